// Thin 1:1 wrappers over the hiredis 0.14 calls this module uses, in the manner of
// swift-system's Internals/Syscalls.swift: no logic beyond adapting C types. Every raw pointer
// of the module stays in this file, including argv marshalling and reply conversion below.
import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hiredis context handle; owned by exactly one `RedisConnection`.
typealias HiredisContext = UnsafeMutablePointer<redisContext>

// Constants from hiredis/read.h, named once so the rest of the module reads as Swift.
enum Hiredis {
    static let ok: CInt = REDIS_OK
    static let err: CInt = REDIS_ERR

    static let errIO: CInt = REDIS_ERR_IO
    static let errEOF: CInt = REDIS_ERR_EOF
    static let errProtocol: CInt = REDIS_ERR_PROTOCOL
    static let errOOM: CInt = REDIS_ERR_OOM
    static let errOther: CInt = REDIS_ERR_OTHER

    static let replyString: CInt = REDIS_REPLY_STRING
    static let replyArray: CInt = REDIS_REPLY_ARRAY
    static let replyInteger: CInt = REDIS_REPLY_INTEGER
    static let replyNil: CInt = REDIS_REPLY_NIL
    static let replyStatus: CInt = REDIS_REPLY_STATUS
    static let replyError: CInt = REDIS_REPLY_ERROR

    /// The C name of a `ctx->err` value, for error messages.
    static func errorName(_ code: CInt) -> String {
        switch code {
        case errIO: "REDIS_ERR_IO"
        case errEOF: "REDIS_ERR_EOF"
        case errProtocol: "REDIS_ERR_PROTOCOL"
        case errOOM: "REDIS_ERR_OOM"
        case errOther: "REDIS_ERR_OTHER"
        default: "REDIS_ERR(\(code))"
        }
    }
}

func hiredis_connectWithTimeout(_ host: String, _ port: Int, _ timeout: timeval) -> HiredisContext? {
    redisConnectWithTimeout(host, CInt(port), timeout)
}

func hiredis_connectUnixWithTimeout(_ path: String, _ timeout: timeval) -> HiredisContext? {
    redisConnectUnixWithTimeout(path, timeout)
}

func hiredis_setTimeout(_ context: HiredisContext, _ timeout: timeval) -> CInt {
    redisSetTimeout(context, timeout)
}

func hiredis_enableKeepAlive(_ context: HiredisContext) -> CInt {
    redisEnableKeepAlive(context)
}

func hiredis_free(_ context: HiredisContext) {
    redisFree(context)
}

func hiredis_appendCommandArgv(
    _ context: HiredisContext,
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>,
    _ argvlen: UnsafePointer<Int>
) -> CInt {
    redisAppendCommandArgv(context, argc, argv, argvlen)
}

func hiredis_commandArgv(
    _ context: HiredisContext,
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>,
    _ argvlen: UnsafePointer<Int>
) -> UnsafeMutableRawPointer? {
    redisCommandArgv(context, argc, argv, argvlen)
}

func hiredis_getReply(_ context: HiredisContext, _ reply: inout UnsafeMutableRawPointer?) -> CInt {
    redisGetReply(context, &reply)
}

func hiredis_appendFormattedCommand(_ context: HiredisContext, _ bytes: [UInt8]) -> CInt {
    bytes.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
    }
}

func hiredis_bufferWrite(_ context: HiredisContext, _ done: inout CInt) -> CInt {
    redisBufferWrite(context, &done)
}

func hiredis_bufferRead(_ context: HiredisContext) -> CInt {
    redisBufferRead(context)
}

func hiredis_getReplyFromReader(_ context: HiredisContext, _ reply: inout UnsafeMutableRawPointer?) -> CInt {
    redisGetReplyFromReader(context, &reply)
}

/// The socket a context reads and writes, for `poll`.
func hiredis_fileDescriptor(_ context: HiredisContext) -> CInt {
    context.pointee.fd
}

func hiredis_freeReplyObject(_ reply: UnsafeMutableRawPointer) {
    freeReplyObject(reply)
}

/// `ctx->err` and `ctx->errstr`, with the `errno` seen right after the failing call.
func hiredis_error(_ context: HiredisContext, errno savedErrno: CInt) -> (code: CInt, message: String, errno: CInt) {
    let message = withUnsafeBytes(of: &context.pointee.errstr) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    return (context.pointee.err, message, savedErrno)
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: .init(seconds), tv_usec: .init(attoseconds / 1_000_000_000_000))
    }
}

/// Calls `body` with hiredis's `argc`, `argv` and `argvlen` for `arguments`.
///
/// All arguments are copied into one contiguous buffer and the pointer and length arrays live
/// on the stack, so a command costs one heap allocation however many arguments it has.
/// Lengths are passed explicitly, so `\0` bytes are safe.
func hiredis_withArgv<R>(
    _ arguments: [RedisArgument],
    _ body: (CInt, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    var storage: [UInt8] = []
    storage.reserveCapacity(arguments.reduce(1) { $0 + $1.bytes.count })
    for argument in arguments {
        storage.append(contentsOf: argument.bytes)
    }
    storage.append(0)  // never empty, so the base address is never nil
    return storage.withUnsafeBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { chars in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: arguments.count) { argv in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: arguments.count) { argvlen in
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        argv.initializeElement(at: index, to: chars.baseAddress! + offset)
                        argvlen.initializeElement(at: index, to: argument.bytes.count)
                        offset += argument.bytes.count
                    }
                    return body(CInt(arguments.count), argv.baseAddress!, UnsafePointer(argvlen.baseAddress!))
                }
            }
        }
    }
}

/// Converts a reply returned by hiredis into a `RedisReply` and frees it.
func hiredis_consumeReply(_ raw: UnsafeMutableRawPointer) -> RedisReply {
    defer { hiredis_freeReplyObject(raw) }
    return hiredis_convert(raw.assumingMemoryBound(to: redisReply.self))
}

private func hiredis_convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
    let r = reply.pointee
    switch r.type {
    case Hiredis.replyString:
        return .bulk(hiredis_bytes(r.str, r.len))
    case Hiredis.replyStatus:
        return .status(String(decoding: hiredis_bytes(r.str, r.len), as: UTF8.self))
    case Hiredis.replyError:
        return .error(String(decoding: hiredis_bytes(r.str, r.len), as: UTF8.self))
    case Hiredis.replyInteger:
        return .integer(Int64(r.integer))
    case Hiredis.replyArray:
        guard let elements = r.element else { return .array([]) }
        return .array((0..<r.elements).map { index in
            elements[index].map(hiredis_convert) ?? .null
        })
    default:  // REDIS_REPLY_NIL; hiredis 0.14 speaks RESP2 only, so nothing else arrives
        return .null
    }
}

private func hiredis_bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
    guard let pointer, length > 0 else { return [] }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        Array(UnsafeBufferPointer(start: $0, count: length))
    }
}
