import ArgumentParser
import VMM

/// `swvmm image-info PATH`: the boot header of a kernel image, for checking an
/// image before booting it (and for learning the boot protocol).
struct ImageInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-info",
        abstract: "Print a kernel image's boot header (bzImage) or ELF program headers (vmlinux)."
    )

    @Argument(help: "A bzImage or vmlinux file.")
    var path: String

    func run() throws {
        let image = try reportingErrors { try KernelImage.load(path: path) }
        let rows = image.imageInfoReport()
        let width = rows.map(\.0.count).max() ?? 0
        for (label, value) in rows {
            print(label + String(repeating: " ", count: width - label.count) + "  " + value)
        }
    }
}
