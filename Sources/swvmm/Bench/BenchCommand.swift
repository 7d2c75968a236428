import ArgumentParser

/// `swvmm bench`: performance figures measured side by side in one run and
/// printed as ratios (these machines are noisy; absolute times drift).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure swvmm and print ratios measured in one run.",
        subcommands: [BootBenchmark.self, InitBenchmark.self, ShadowBenchmark.self],
        defaultSubcommand: BootBenchmark.self
    )
}
