// Thin entry point: the commands live beside this file.
BenchCommand.main()
