// swift-tools-version:6.2
// swift-protobuf 1.39 needs tools 6.2. Dependencies point one way (docs/architecture.md):
// TollgateCore ← TollgateWire, TollgateX402, TollgateRedis ← TollgateZeroMQ/transport ← sidecar, collector ← tollgate.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tollgate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tollgate", targets: ["TollgateCLI"]),
        .executable(name: "tollgate-bench", targets: ["TollgateBench"]),
        .library(name: "TollgateCore", targets: ["TollgateCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // MARK: C libraries
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // MARK: Pure core
        .target(name: "TollgateCore", swiftSettings: swiftSettings),

        // MARK: Adapters
        .target(
            name: "TollgateWire",
            dependencies: [
                "TollgateCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .target(name: "TollgateX402", dependencies: ["TollgateCore"], swiftSettings: swiftSettings),
        .target(name: "TollgateZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: swiftSettings),
        .target(name: "TollgateRedis", dependencies: ["CHiredis"], swiftSettings: swiftSettings),
        .target(
            name: "TollgateStore",
            dependencies: ["TollgateCore", "TollgateRedis", .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TollgateConfig",
            dependencies: [
                "TollgateCore",
                "TollgateX402",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Components
        .target(
            name: "TollgateSidecar",
            dependencies: [
                "TollgateCore", "TollgateWire", "TollgateZeroMQ", "TollgateConfig", "TollgateX402",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TollgateCollector",
            dependencies: [
                "TollgateCore", "TollgateWire", "TollgateZeroMQ", "TollgateRedis", "TollgateStore", "TollgateConfig",
                "TollgateX402",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TollgateCLI",
            dependencies: [
                "TollgateSidecar", "TollgateCollector", "TollgateConfig", "TollgateCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TollgateBench",
            dependencies: [
                "TollgateRedis", "TollgateZeroMQ", "TollgateCore", "TollgateStore", "TollgateSidecar", "TollgateCollector",
                "TollgateTestSupport", "TollgateWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .target(
            name: "TollgateTestSupport",
            dependencies: ["TollgateCore", "TollgateRedis"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "TollgateCoreTests", dependencies: ["TollgateCore", "TollgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateZeroMQTests", dependencies: ["TollgateZeroMQ", "TollgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateRedisTests", dependencies: ["TollgateRedis", "TollgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateWireTests", dependencies: ["TollgateWire", "TollgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateStoreTests", dependencies: ["TollgateStore", "TollgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TollgateSidecarTests",
            dependencies: ["TollgateSidecar", "TollgateTestSupport", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TollgateCollectorTests",
            dependencies: ["TollgateCollector", "TollgateSidecar", "TollgateTestSupport", .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TollgateCLITests", dependencies: ["TollgateCLI", "TollgateCollector", "TollgateCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "TollgateConfigTests", dependencies: ["TollgateConfig", "TollgateX402"], swiftSettings: swiftSettings),
        .testTarget(name: "TollgateX402Tests", dependencies: ["TollgateX402", "TollgateCore"], swiftSettings: swiftSettings),
    ]
)
