import ArgumentParser
import VMM

/// `swvmm bench`: performance figures measured side by side in one run, printed as ratios.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure swvmm (boot, exits) and print ratios measured in one run.",
        subcommands: [BootBenchmark.self],
        defaultSubcommand: BootBenchmark.self
    )
}

struct BootBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "boot", abstract: "Start-up cost, memory overhead and exit throughput.")
    func run() throws {
        printError("not yet")
    }
}
