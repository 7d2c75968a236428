import Foundation
import Glibc
import XCTest
import Guest
import CShadow
@testable import Shadow

/// The fast path's parts: batch tables, batches of lookups, the memo and
/// its training, predictions and their fallback, and whole runs of real
/// host tools. A LocalExecutor stands in for the guest (it runs the calls
/// on this host), so answers can be compared with the host's own; the GDB
/// stub's batch runner itself runs in the reference-guest tool tests.
final class FastPathTests: XCTestCase {
    private func place(_ text: String, in executor: LocalExecutor, at offset: Int) throws -> UInt64 {
        try executor.writeRegion(offset: offset, Array(text.utf8) + [0])
        return executor.regionAddress + UInt64(offset)
    }

    func testBatchTableLayoutAndBackReferences() throws {
        let executor = LocalExecutor()
        let path = try place("/proc/self/stat", in: executor, at: 0)
        let buffer = executor.regionAddress + 4096
        let calls = [
            BatchedCall(LinuxABI.Syscall.openat, [LookupBatch.atFdcwd, path, 0, 0]),
            BatchedCall(LinuxABI.Syscall.read, [0, buffer, 512], references: [0: 1]),
            BatchedCall(LinuxABI.Syscall.close, [0], references: [0: 2]),
        ]
        let table = try BatchTable.encode(calls)
        XCTAssertEqual(table.count, 3 * BatchTable.entrySize)
        XCTAssertEqual(UInt64(littleEndianBytes: table[BatchTable.entrySize ..< BatchTable.entrySize + 8]), UInt64(LinuxABI.Syscall.read))
        XCTAssertEqual(table[BatchTable.entrySize + BatchTable.referencesOffset], 1, "read's fd refers one call back")
        XCTAssertEqual(table[2 * BatchTable.entrySize + BatchTable.referencesOffset], 2, "close's fd refers two calls back")
        let results = try BatchTable.runOneByOne(calls, on: executor)
        XCTAssertGreaterThanOrEqual(results[0], 0, "openat")
        XCTAssertGreaterThan(results[1], 0, "read through the fd openat returned")
        XCTAssertEqual(results[2], 0, "close of that fd")
        XCTAssertEqual(fcntl(Int32(results[0]), F_GETFD), -1, "the batch's fd is closed")
        // S writes results at offset 64 of each entry: reading them back.
        var written = table
        for (index, result) in results.enumerated() {
            let at = index * BatchTable.entrySize + BatchTable.resultOffset
            written.replaceSubrange(at ..< at + 8, with: UInt64(bitPattern: result).littleEndianBytes())
        }
        XCTAssertEqual(try BatchTable.results(written, count: 3), results)
    }

    func testBatchTableRefusesReferencesItCannotExpress() {
        XCTAssertThrowsError(try BatchTable.encode([BatchedCall(0, [0], references: [0: 1])]), "no call before the first")
        let many = (0 ..< 300).map { _ in BatchedCall(39, []) } + [BatchedCall(3, [0], references: [0: 300])]
        XCTAssertThrowsError(try BatchTable.encode(many), "farther back than one byte reaches")
        XCTAssertThrowsError(try BatchTable.encode([BatchedCall(0, [1, 2, 3, 4, 5, 6, 7])]), "seven arguments")
        XCTAssertThrowsError(try BatchTable.results([0, 1, 2], count: 1), "a short table")
    }

    func testStubBatchRunnerDisassemblesToTheListing() throws {
        let stub = try ShadowStub(regionLength: 64 << 10, sleepNanoseconds: 20_000_000)
        let base: UInt64 = 0x1000
        let code = Array(stub.code[ShadowStub.batchOffset...])
        let instructions = try Disassembler().disassemble(code, address: base + UInt64(ShadowStub.batchOffset), maxInstructions: 40)
        XCTAssertEqual(instructions.map(\.mnemonic), [
            "test", "je", "xor", "movzx", "test", "je", "imul", "mov", "sub", "mov", "mov", "inc", "cmp", "jne",
            "mov", "mov", "mov", "mov", "mov", "mov", "mov", "syscall", "mov", "add", "dec", "jmp", "jmp",
            "mov", "out", "jmp",
        ])
        XCTAssertEqual(instructions.reduce(0) { $0 + $1.size }, code.count)
        func at(_ offset: Int) -> String? {
            instructions.first { $0.address == base + UInt64(offset) }.map { "\($0.mnemonic) \($0.operands)" }
        }
        let call = try XCTUnwrap(instructions.first { $0.isSyscall })
        XCTAssertEqual(call.address + UInt64(call.size), base + UInt64(ShadowStub.batchCallReturnOffset))
        // Done, the batch goes where r13 says: TRAP (a GDB executor) or PORT (swvmm's own).
        XCTAssertEqual(instructions[instructions.count - 4].operands, "r13")
        XCTAssertEqual(at(ShadowStub.portExitOffset), "mov edx, r14d")
        XCTAssertEqual(at(ShadowStub.portOutOffset), "out dx, al")
        XCTAssertEqual(instructions.last?.operands, (base + UInt64(ShadowStub.trapOffset)).guestHex, "PORT goes on at TRAP")
        XCTAssertLessThanOrEqual(stub.code.count, ShadowStub.headerOffset, "the code stays below the header")
    }

    func testLookupBatchAnswersAsTheCallsThemselvesWould() throws {
        let executor = LocalExecutor()
        let lookups = [
            PathLookup(kind: .open, path: "/proc/self/status", flags: 0),
            PathLookup(kind: .stat, path: "/proc/self", flags: 0),
            PathLookup(kind: .readlink, path: "/proc/self/exe", flags: 4096),
            PathLookup(kind: .open, path: "/proc/no-such-file", flags: 0),
            PathLookup(kind: .open, path: "/proc/self/task", flags: 0),
            PathLookup(kind: .open, path: "/proc/self/task", flags: LinuxABI.oDirectory),
            PathLookup(kind: .statfs, path: "/proc", flags: 0),
            PathLookup(kind: .statx, path: "/proc/self", flags: 0x7ff << 32),  // STATX_BASIC_STATS
        ]
        let answers = try LookupBatch(lookups: lookups, readWindow: LookupBatch.sharedReadWindow).run(on: executor)
        guard case .file(let contents, let complete, let fileStat) = answers[0] else { return XCTFail("status: \(answers[0])") }
        XCTAssertEqual(UInt32(littleEndianBytes: fileStat[24 ..< 28]) & UInt32(S_IFMT), UInt32(S_IFREG), "the file's fstat")
        XCTAssertTrue(String(decoding: contents, as: UTF8.self).hasPrefix("Name:"))
        XCTAssertTrue(complete, "a read returned 0 after the contents")
        guard case .stat(let statBytes) = answers[1] else { return XCTFail("stat: \(answers[1])") }
        var own = stat()
        XCTAssertEqual(lstat("/proc/self/", &own), 0)
        XCTAssertEqual(UInt32(littleEndianBytes: statBytes[24 ..< 28]), own.st_mode, "st_mode")
        var link = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &link, link.count)
        XCTAssertEqual(answers[2], .link(link[0 ..< length].map { UInt8(bitPattern: $0) }))
        XCTAssertEqual(answers[3], .error(ENOENT))
        guard case .directory(let unlisted, false, let directoryStat) = answers[4] else { return XCTFail("task: \(answers[4])") }
        XCTAssertEqual(unlisted, [], "without O_DIRECTORY the batch reads (EISDIR), it does not list")
        XCTAssertEqual(UInt32(littleEndianBytes: directoryStat[24 ..< 28]) & UInt32(S_IFMT), UInt32(S_IFDIR))
        guard case .directory(let listing, true, _) = answers[5] else { return XCTFail("task listed: \(answers[5])") }
        XCTAssertEqual(Set(DirectoryRecords.names(in: listing)), Set([".", ".."] + (try threadIDs())),
                       "with O_DIRECTORY the listing, whole")
        guard case .stat(let statfsBytes) = answers[6] else { return XCTFail("statfs: \(answers[6])") }
        XCTAssertEqual(statfsBytes.count, KernelStructSize.statfs)
        XCTAssertEqual(UInt64(littleEndianBytes: statfsBytes[0 ..< 8]), 0x9fa0, "f_type PROC_SUPER_MAGIC (include/uapi/linux/magic.h)")
        guard case .stat(let statxBytes) = answers[7] else { return XCTFail("statx: \(answers[7])") }
        XCTAssertEqual(statxBytes.count, KernelStructSize.statx)
        XCTAssertEqual(UInt16(littleEndianBytes: statxBytes[0x1c ..< 0x1e]) & UInt16(S_IFMT), UInt16(S_IFDIR), "stx_mode")
        XCTAssertEqual(try openDescriptors(), try openDescriptors(), "no fd of the batch is left open")
    }

    /// A listing longer than the window: the records read ahead, then the
    /// guest's position after any of them (what a reopen seeks to) gives
    /// the rest, each name once.
    func testADirectoryListedInPartContinuesAtTheGuestsPosition() throws {
        let answers = try LookupBatch(lookups: [PathLookup(kind: .open, path: "/proc/self", flags: LinuxABI.oDirectory)],
                                      readWindow: 128).run(on: LocalExecutor())
        guard case .directory(let listing, let complete, _) = answers[0] else { return XCTFail("\(answers)") }
        XCTAssertFalse(complete, "/proc/self lists more than 128 bytes")
        XCTAssertTrue(DirectoryRecords.isWellFormed(listing))
        let whole = try FileManager.default.contentsOfDirectory(atPath: "/proc/self")
        let first = DirectoryRecords.names(in: listing)
        let passed = DirectoryRecords.prefix(from: 0, fitting: 60, in: listing)
        XCTAssertGreaterThan(passed, 0)
        XCTAssertEqual(DirectoryRecords.prefix(from: 0, fitting: 1, in: listing), 0, "no record fits one byte")
        var snapshot = FileDescriptorTable.FileSnapshot(flags: LinuxABI.oDirectory, contents: listing, complete: false,
                                                        stat: [], directory: true)
        snapshot.offset = passed
        let fd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let position = off_t(Int64(bitPattern: snapshot.guestPosition))
        XCTAssertEqual(lseek(fd, position, SEEK_SET), position)
        var rest: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes {
                Int(cshadow_raw_syscall(LinuxABI.Syscall.getdents64, UInt64(fd), UInt64(UInt(bitPattern: $0.baseAddress)),
                                        UInt64($0.count), 0, 0, 0))
            }
            guard n > 0 else { break }
            rest += buffer[0 ..< n]
        }
        let names = DirectoryRecords.names(in: Array(listing[0 ..< passed])) + DirectoryRecords.names(in: rest)
        XCTAssertEqual(names.filter { $0 != "." && $0 != ".." }.sorted(), whole.sorted())
        XCTAssertEqual(Set(names).count, names.count, "no name twice")
        XCTAssertLessThan(first.count, whole.count + 2)
    }

    func testALargeFileIsReadAheadOnlyInPart() throws {
        let answers = try LookupBatch(lookups: [PathLookup(kind: .open, path: "/proc/self/maps", flags: 0)], readWindow: 64)
            .run(on: LocalExecutor())
        guard case .file(let contents, let complete, _) = answers[0] else { return XCTFail("\(answers)") }
        XCTAssertEqual(contents.count, 65, "the window and the one byte that says more follows")
        XCTAssertFalse(complete)
    }

    func testMemoTextRoundTripsAndRefusesCorruptOrForeign() throws {
        let memo = CallMemo(key: 0x1234_5678_9abc_def0, patterns: ["/proc": [
            EntryLookup(kind: .stat, rest: "", flags: 0), EntryLookup(kind: .open, rest: "/stat", flags: 0o2000000),
            EntryLookup(kind: .readlink, rest: "/exe", flags: 4096),
        ]], sequence: [PathLookup(kind: .open, path: "/proc/net/tcp", flags: 0), PathLookup(kind: .stat, path: "/etc", flags: 256)])
        XCTAssertEqual(try CallMemo.parse(memo.text, expectedKey: memo.key), memo)
        XCTAssertThrowsError(try CallMemo.parse(memo.text, expectedKey: 1)) { error in
            XCTAssertEqual(error as? CallMemo.ParseError, .foreign(expected: 1, found: memo.key))
        }
        for corrupt in ["", "swvmm-memo 1\n", "swvmm-memo 1\nkey zz\n", "swvmm-memo 1\nkey 1\nlookup open /x 0\n",
                        "swvmm-memo 1\nkey 1\ndirectory /proc\nlookup write /x 0\n",
                        "swvmm-memo 1\nkey 1\ndirectory /proc\nlookup open x 0\n", "swvmm-memo 2\nkey 1\n",
                        "swvmm-memo 1\nkey 1\nsequence open relative 0\n", "swvmm-memo 1\nkey 1\nsequence open /a b 0\n"] {
            XCTAssertThrowsError(try CallMemo.parse(corrupt, expectedKey: 1), corrupt)
        }
    }

    func testTheStoreKeepsMemosPrivateAndIgnoresBadOnes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = MemoStore(directory: directory + "/cache/swvmm")
        var warnings: [String] = []
        XCTAssertNil(store.load(key: 7) { warnings.append($0) })
        XCTAssertEqual(warnings, [], "no memo yet is no warning")
        let memo = CallMemo(key: 7, patterns: ["/proc": [EntryLookup(kind: .stat, rest: "", flags: 0)]])
        store.save(memo) { warnings.append($0) }
        XCTAssertEqual(store.load(key: 7) { warnings.append($0) }, memo)
        var info = stat()
        XCTAssertEqual(stat(store.path(for: 7), &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(stat(store.directory, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        // Another key's memo under this key's name (copied, say): ignored with a warning.
        XCTAssertEqual(rename(store.path(for: 7), store.path(for: 8)), 0)
        XCTAssertNil(store.load(key: 8) { warnings.append($0) })
        XCTAssertTrue(warnings.last?.contains("ignored") == true, "\(warnings)")
        XCTAssertEqual(MemoStore.standard(cacheHome: "/c", home: "/h")?.directory, "/c/swvmm")
        XCTAssertEqual(MemoStore.standard(cacheHome: "relative", home: "/h")?.directory, "/h/.cache/swvmm")
        XCTAssertNil(MemoStore.standard(cacheHome: nil, home: nil))
    }

    func testTrainingLearnsTheMostFrequentPerEntrySequence() {
        var trainer = MemoTrainer()
        trainer.listed(directory: "/proc", names: ["1", "2", "3"])
        for pid in ["1", "2", "3"] {
            trainer.observe(PathLookup(kind: .stat, path: "/proc/\(pid)", flags: 0))
            trainer.observe(PathLookup(kind: .open, path: "/proc/\(pid)/stat", flags: 0))
            trainer.observe(PathLookup(kind: .open, path: "/proc/uptime", flags: 0))  // not about an entry: ignored
            if pid == "1" { trainer.observe(PathLookup(kind: .open, path: "/proc/1/environ", flags: 0)) }
        }
        trainer.observe(PathLookup(kind: .open, path: "/proc/4/stat", flags: 0))  // not listed: ignored
        XCTAssertEqual(trainer.patterns(), ["/proc": [EntryLookup(kind: .stat, rest: "", flags: 0),
                                                      EntryLookup(kind: .open, rest: "/stat", flags: 0)]])
        var once = MemoTrainer()
        once.listed(directory: "/proc", names: ["1"])
        once.observe(PathLookup(kind: .open, path: "/proc/1/stat", flags: 0))
        XCTAssertEqual(once.patterns(), [:], "a sequence seen once is no pattern")
    }

    func testANestedListingNeitherSplitsTheOuterPatternNorDropsItsPredictions() {
        var trainer = MemoTrainer()
        trainer.listed(directory: "/proc", names: ["1", "2"])
        for pid in ["1", "2"] {
            trainer.observe(PathLookup(kind: .open, path: "/proc/\(pid)/stat", flags: 0))
            trainer.listed(directory: "/proc/\(pid)/task", names: [pid])
            trainer.observe(PathLookup(kind: .open, path: "/proc/\(pid)/task/\(pid)/stat", flags: 0))
        }
        XCTAssertEqual(trainer.patterns(), ["/proc": [EntryLookup(kind: .open, rest: "/stat", flags: 0)]],
                       "thread lookups belong to their task directory, each listed once")
        let fast = FastPath(store: nil, policy: ShadowPolicy(), memo: CallMemo(key: 1, patterns: trainer.patterns()))
        fast.listed(directory: "/proc", names: ["1", "2"])
        fast.listed(directory: "/proc/1/task", names: ["1"])
        XCTAssertEqual(fast.predictions.map(\.lookup.path), ["/proc/1/stat", "/proc/2/stat"])
    }

    func testASequenceIsLearnedAndPredictedFromItsFirstLookup() {
        var trainer = MemoTrainer()
        let tcp = PathLookup(kind: .open, path: "/proc/net/tcp", flags: 0), tcp6 = PathLookup(kind: .open, path: "/proc/net/tcp6", flags: 0)
        let module = PathLookup(kind: .open, path: "/sys/module/dummy/refcnt", flags: 0)
        let device = PathLookup(kind: .open, path: "/sys/class/net/lo/address", flags: 0)
        for lookup in [tcp, tcp6, module, device, PathLookup(kind: .stat, path: "/a b", flags: 0)] { trainer.observe(lookup) }
        XCTAssertEqual(trainer.sequence, [tcp, tcp6, module, device], "a path a memo line cannot hold is not learned")
        let fast = FastPath(store: nil, policy: ShadowPolicy(), memo: CallMemo(key: 1, sequence: trainer.sequence))
        fast.looking(up: tcp6)
        XCTAssertTrue(fast.predictions.isEmpty, "only the sequence's first lookup starts it")
        fast.looking(up: tcp)
        XCTAssertEqual(fast.predictions.map(\.lookup), [tcp, tcp6, module], "a /sys attribute outside /sys/module is never read ahead")
        XCTAssertEqual(fast.take(tcp), .init(stream: .sequence, index: 0))
        fast.looking(up: tcp)
        XCTAssertEqual(fast.take(tcp6), .init(stream: .sequence, index: 1), "the sequence starts once per run")
    }

    /// pstree's shape: a sequence lookup (/proc/uptime) between each entry's
    /// lookups takes from its own stream and drops none of the entries'.
    func testASequenceBetweenEntriesLeavesTheirPredictions() {
        let uptime = PathLookup(kind: .open, path: "/proc/uptime", flags: 0)
        let memo = CallMemo(key: 1, patterns: ["/proc": [EntryLookup(kind: .open, rest: "/stat", flags: 0)]], sequence: [uptime, uptime])
        let fast = FastPath(store: nil, policy: ShadowPolicy(), memo: memo)
        fast.listed(directory: "/proc", names: ["1", "2"])
        let stat1 = PathLookup(kind: .open, path: "/proc/1/stat", flags: 0), stat2 = PathLookup(kind: .open, path: "/proc/2/stat", flags: 0)
        XCTAssertEqual(fast.take(stat1), .init(stream: .entries, index: 0))
        fast.looking(up: uptime)
        XCTAssertEqual(fast.take(uptime), .init(stream: .sequence, index: 0))
        XCTAssertEqual(fast.take(stat2), .init(stream: .entries, index: 1), "the entries' stream is where it was")
        XCTAssertEqual(fast.take(uptime), .init(stream: .sequence, index: 1))
        XCTAssertEqual(fast.misses, 0)
    }

    func testPredictionsAreTakenInOrderAndAnythingElseIsAMiss() {
        let memo = CallMemo(key: 1, patterns: ["/proc": [EntryLookup(kind: .stat, rest: "", flags: 0),
                                                         EntryLookup(kind: .open, rest: "/stat", flags: 0)]])
        let fast = FastPath(store: nil, policy: ShadowPolicy(), memo: memo)
        fast.listed(directory: "/proc", names: ["self", "1", "2", "10"])
        XCTAssertEqual(fast.predictions.map(\.lookup.path), ["/proc/1", "/proc/1/stat", "/proc/2", "/proc/2/stat", "/proc/10", "/proc/10/stat"],
                       "numbered entries only, in listing order")
        func entry(_ index: Int) -> FastPath.Slot { .init(stream: .entries, index: index) }
        XCTAssertEqual(fast.take(PathLookup(kind: .stat, path: "/proc/1", flags: 0)), entry(0))
        XCTAssertNil(fast.take(PathLookup(kind: .open, path: "/proc/1/stat", flags: 0o4000)), "other flags: a miss")
        XCTAssertEqual(fast.take(PathLookup(kind: .stat, path: "/proc/2", flags: 0)), entry(2), "skips the unused /proc/1/stat")
        XCTAssertNil(fast.take(PathLookup(kind: .open, path: "/proc/1/stat", flags: 0)), "never answered after a later one")
        XCTAssertEqual(fast.misses, 2)
        fast.record([.error(ENOENT), .stat([1])], from: entry(4))
        XCTAssertEqual(fast.take(PathLookup(kind: .stat, path: "/proc/10", flags: 0)), entry(4))
        XCTAssertEqual(fast.answer(at: entry(4)), .error(ENOENT))
        XCTAssertEqual(fast.answer(at: entry(4)), .unusable, "an answer is given out once")
        fast.listed(directory: "/proc", names: ["7"])
        XCTAssertEqual(fast.predictions.map(\.lookup.path), ["/proc/7", "/proc/7/stat"], "a new listing replaces the predictions")
    }

    func testPredictionsNeverCoverWhatPolicyKeepsLocalOrReadAheadCannotRead() {
        let memo = CallMemo(key: 1, patterns: ["/proc": [EntryLookup(kind: .open, rest: "/stat", flags: 0)],
                                               "/sys/class": [EntryLookup(kind: .open, rest: "/x", flags: 0),
                                                              EntryLookup(kind: .stat, rest: "", flags: 0)]])
        let fast = FastPath(store: nil, policy: ShadowPolicy(extraLocalPaths: ["/proc/2"]), memo: memo)
        fast.listed(directory: "/proc", names: ["1", "2"])
        XCTAssertEqual(fast.predictions.map(\.lookup.path), ["/proc/1/stat"])
        fast.listed(directory: "/sys/class", names: ["3"])
        XCTAssertEqual(fast.predictions.map(\.lookup.path), ["/sys/class/3"], "opens outside /proc are never read ahead")
    }

    func testDirectoryRecordsParseAndStopAtAMalformedRecord() {
        func record(_ name: String) -> [UInt8] {
            let length = (19 + name.utf8.count + 1 + 7) & ~7
            var bytes = [UInt8](repeating: 0, count: length)
            bytes[16] = UInt8(length)
            bytes.replaceSubrange(19 ..< 19 + name.utf8.count, with: Array(name.utf8))
            return bytes
        }
        XCTAssertEqual(DirectoryRecords.names(in: record("1") + record("self") + record("1234")), ["1", "self", "1234"])
        var broken = record("1") + record("2")
        broken[broken.count - 24 + 16] = 200  // the second record claims more than there is
        XCTAssertEqual(DirectoryRecords.names(in: broken), ["1"])
        XCTAssertEqual(DirectoryRecords.names(in: [1, 2, 3]), [])
    }

    /// ps through the supervisor twice, with a memo store of the test's own:
    /// the first run trains, the second answers from predicted batches; both
    /// list what ps run directly lists (the stable early pids, as SupervisorLiveTests).
    func testPsTrainsThenAnswersFromItsMemoWithTheSameOutput() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var lines: [String] = []
        let configuration = SupervisorConfiguration(fastPath: true, memoStore: MemoStore(directory: directory + "/swvmm"),
                                                    diagnostic: { lines.append($0) })
        let stable = SupervisorHarness.stableEarlyProcesses
        let arguments = ["ps", "-e", "-o", "pid,comm"]
        var verbose = configuration
        verbose.verbose = true
        for run in ["training", "memoized"] {
            let (shadowed, supervisor) = try SupervisorHarness.shadow(arguments, configuration: verbose)
            let direct = try SupervisorHarness.direct(arguments)
            XCTAssertEqual(shadowed.status, 0, "\(run): \(shadowed.stderr)")
            XCTAssertEqual(stable(shadowed.stdout), stable(direct.stdout), run)
            XCTAssertEqual(supervisor.openGuestFds, 0, run)
        }
        XCTAssertTrue(lines.contains { $0.contains("(memo trained)") }, "\(lines)")
        let used = lines.first { $0.contains("(memo used)") }
        XCTAssertNotNil(used, "\(lines)")
        XCTAssertFalse(used?.contains("answered 0 lookups") ?? true, "the memoized run answered from batches: \(used ?? "")")
    }

    func testReadAheadTakesOneBatchAndTheOneCallPathNone() throws {
        let arguments = ["cat", "/proc/self/status"]
        let oneCall = LocalExecutor()
        let (plain, _) = try SupervisorHarness.shadow(arguments, executor: oneCall)
        XCTAssertEqual(plain.status, 0)
        XCTAssertEqual(oneCall.calls.first, LinuxABI.Syscall.openat)
        XCTAssertGreaterThanOrEqual(oneCall.calls.filter { $0 == LinuxABI.Syscall.read }.count, 2, "cat reads until a read returns 0")
        let fast = LocalExecutor()
        let (ahead, supervisor) = try SupervisorHarness.shadow(arguments, configuration: SupervisorConfiguration(fastPath: true, diagnostic: { _ in }),
                                                               executor: fast)
        XCTAssertEqual(ahead.status, 0)
        XCTAssertTrue(ahead.stdout.hasPrefix("Name:"), ahead.stdout)
        XCTAssertEqual(fast.calls, [LinuxABI.Syscall.openat, LinuxABI.Syscall.fstat, LinuxABI.Syscall.read, LinuxABI.Syscall.read,
                                    LinuxABI.Syscall.close], "one read-ahead batch; cat's fstat, reads and close are answered from it")
        XCTAssertEqual(supervisor.openGuestFds, 0)
    }

    /// Directories read ahead: ls lists from the snapshot (one batch, no
    /// other guest call); du's fcntl on a directory read ahead reopens it,
    /// and its stats relative to it go the one-call way; find lists two.
    /// Each output, trained or memoized, is the one the tool prints run
    /// directly, and no guest fd is left open.
    func testDirectoriesReadAheadListAndServeRelativeLookups() throws {
        let fast = SupervisorConfiguration(fastPath: true, diagnostic: { _ in })
        let listing = ["ls", "-1R", "/proc/sys/kernel/random"]
        let executor = LocalExecutor()
        let (listed, supervisor) = try SupervisorHarness.shadow(listing, configuration: fast, executor: executor)
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertEqual(listed.stdout, try SupervisorHarness.direct(listing).stdout)
        // Before it, ls's statfs, statx and /proc/filesystems (read ahead too);
        // after it, ls -R's statx of the directory's fd, asked by its path.
        XCTAssertEqual(Array(executor.calls.suffix(6)), [LinuxABI.Syscall.openat, LinuxABI.Syscall.fstat, LinuxABI.Syscall.getdents64,
                                                         LinuxABI.Syscall.getdents64, LinuxABI.Syscall.close, LinuxABI.Syscall.statx],
                       "the listing is one batch: \(executor.calls)")
        XCTAssertEqual(executor.calls.filter { $0 == LinuxABI.Syscall.getdents64 }.count, 2, "ls's getdents64 answered from it")
        XCTAssertEqual(supervisor.openGuestFds, 0)

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var memoized = fast
        memoized.memoStore = MemoStore(directory: directory + "/swvmm")
        for walk in [["find", "/proc/sys/kernel/random", "/proc/sys/kernel/keys", "-maxdepth", "1", "-type", "f"],
                     ["du", "-a", "/proc/sys/kernel/random"]] {
            let direct = try SupervisorHarness.direct(walk)
            XCTAssertEqual(direct.status, 0, direct.stderr)
            for (run, configuration) in [("fast", fast), ("training", memoized), ("memoized", memoized)] {
                let (found, supervisor) = try SupervisorHarness.shadow(walk, configuration: configuration)
                XCTAssertEqual(found.status, 0, "\(walk[0]) \(run): \(found.stderr)")
                XCTAssertEqual(found.stdout, direct.stdout, "\(walk[0]) \(run)")
                XCTAssertEqual(supervisor.openGuestFds, 0, "\(walk[0]) \(run)")
            }
        }
    }

    /// A path with ".." is never read ahead: the guest's walk of it may
    /// differ from its lexical normal form (after a symlink).
    func testAPathWithAParentComponentGoesTheOneCallWay() throws {
        var lines: [String] = []
        let configuration = SupervisorConfiguration(verbose: true, fastPath: true, diagnostic: { lines.append($0) })
        let arguments = ["cat", "/proc/sys/../version"]
        let (output, _) = try SupervisorHarness.shadow(arguments, configuration: configuration)
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertEqual(output.stdout, try SupervisorHarness.direct(arguments).stdout)
        XCTAssertTrue(lines.contains { $0.contains("fast path: 0 batches") }, "\(lines)")
    }

    /// An executor that runs a batch one call at a time (swvmm's VM) gets
    /// no fast path: its runs make the one-call way's calls, and --verbose says why.
    func testAnExecutorWithoutOneTransitionBatchesGoesTheOneCallWay() throws {
        var lines: [String] = []
        let configuration = SupervisorConfiguration(verbose: true, fastPath: true, diagnostic: { lines.append($0) })
        let arguments = ["cat", "/proc/self/status"]
        let oneByOne = LocalExecutor(runsBatchesInOneTransition: false)
        let (output, _) = try SupervisorHarness.shadow(arguments, configuration: configuration, executor: oneByOne)
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertTrue(output.stdout.hasPrefix("Name:"), output.stdout)
        XCTAssertFalse(oneByOne.calls.contains(LinuxABI.Syscall.fstat), "no read-ahead batch (its fstat): \(oneByOne.calls)")
        XCTAssertTrue(lines.contains { $0.contains("fast path: off") }, "\(lines)")
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "swvmm-memo-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func threadIDs() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
    }

    private func openDescriptors() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").sorted()
    }
}
