/// The fast path of one supervised run (after Hybrid-Bridge's decoupled,
/// memoized execution): read-ahead of small /proc files, and the lookups a
/// memo predicts after a directory listing, run as batches in S and
/// answered while the inspector's calls match.
///
/// Training: without a memo for this inspector, the run records what it
/// looks up about each numbered entry of a listed directory, and its other
/// lookups in order (`MemoTrainer`); at the end the most frequent per-entry
/// group and that sequence become the memo. Prediction: with a memo, a
/// listing of the directory predicts the group for every numbered entry, in
/// listing order, and the sequence's first lookup predicts the rest of it;
/// the two are separate streams, so a sequence that goes on between the
/// entries (pstree reads /proc/uptime for each process) leaves the entries'
/// predictions standing. An inspector's lookup that is the next prediction
/// of a stream, or a later one (those skipped are dropped), is answered from
/// a batch run when it was first needed; any other lookup is a miss and goes
/// the one-call way. Results never outlive the run, and each is a snapshot
/// of the guest taken when its batch ran.
final class FastPath {
    /// Where memos are kept (nil: none is read or written).
    let store: MemoStore?
    /// The policy, part of the memo key.
    let policy: ShadowPolicy
    /// The memo key, once the inspector's files were hashed (nil inside: no key).
    private(set) var key: UInt64??
    /// The memo in use (nil: none; this run trains).
    private(set) var memo: CallMemo?
    var trainer = MemoTrainer()

    /// One predicted lookup and, once its batch ran, the guest's answer.
    struct Prediction {
        var lookup: PathLookup
        var answer: LookupAnswer?
    }
    /// Where predictions come from: a listing's per-entry pattern, or the sequence.
    enum Stream: CaseIterable { case entries, sequence }
    /// One stream's predictions and how far the inspector has passed them.
    private struct Predictions {
        var items: [Prediction] = []
        var cursor = 0
    }
    /// A prediction's place.
    struct Slot: Equatable {
        var stream: Stream
        var index: Int
    }
    private var streams: [Stream: Predictions] = [:]
    /// Both streams' predictions, the entries' first (what the tests read).
    var predictions: [Prediction] { Stream.allCases.flatMap { streams[$0]?.items ?? [] } }

    /// Counters for `--verbose` and the benchmark.
    private(set) var batches = 0
    private(set) var answeredFromBatches = 0
    private(set) var misses = 0

    /// `memo`: one already in use (tests; runs look theirs up in `prepare`).
    init(store: MemoStore?, policy: ShadowPolicy, memo: CallMemo? = nil) {
        self.store = store
        self.policy = policy
        self.memo = memo
        if let memo { key = .some(memo.key) }
    }

    /// The memo for the inspector `pid`, looked up once per run, at its first
    /// guest lookup or listing (its libraries are mapped by then).
    func prepare(inspector pid: Int32, warn: (String) -> Void) {
        guard key == nil else { return }
        let computed = store == nil ? nil : MemoStore.key(inspector: pid, policy: policy)
        key = .some(computed)
        if let computed, let store { memo = store.load(key: computed, warn: warn) }
    }

    /// `directory` was listed with `names`: predicts the memo's lookups for
    /// each numbered entry (those the policy routes to the guest, and opens
    /// only where reading ahead is sound), replacing what an earlier listing
    /// predicted (a listing the memo has no pattern for, /proc/<pid>/task
    /// inside a walk of /proc, leaves them); the trainer learns from it.
    func listed(directory: String, names: [String]) {
        let numbered = names.filter(EntryLookup.isAbstracted)
        guard !numbered.isEmpty else { return }
        trainer.listed(directory: directory, names: numbered)
        guard let pattern = memo?.patterns[directory], !pattern.isEmpty else { return }
        streams[.entries] = Predictions(items: numbered.flatMap { name in
            pattern.map { Prediction(lookup: $0.lookup(directory: directory, entry: name)) }
                .filter { $0.lookup.isPredictable(under: policy) }
        })
    }

    /// Whether the memo's sequence was started (it is, once, at its first lookup).
    private var sequenceStarted = false

    /// `lookup` is about to be answered: when it is the first of the memo's
    /// sequence, the sequence becomes the predictions (once per run).
    func looking(up lookup: PathLookup) {
        guard !sequenceStarted, let sequence = memo?.sequence, sequence.first == lookup else { return }
        sequenceStarted = true
        streams[.sequence] = Predictions(items: sequence.filter { $0.isPredictable(under: policy) }.map { Prediction(lookup: $0) })
    }

    /// The place of `lookup` among the predictions not yet passed (the
    /// entries' stream first), if any; it and everything before it in its
    /// stream are passed. A lookup neither stream predicts is a miss.
    func take(_ lookup: PathLookup) -> Slot? {
        var pending = false
        for stream in Stream.allCases {
            guard let predictions = streams[stream], predictions.cursor < predictions.items.count else { continue }
            pending = true
            guard let index = predictions.items[predictions.cursor...].firstIndex(where: { $0.lookup == lookup }) else { continue }
            streams[stream]?.cursor = index + 1
            return Slot(stream: stream, index: index)
        }
        if pending { misses += 1 }
        return nil
    }

    /// Predictions from `slot` on in its stream that have no answer yet, for the next batch.
    func unanswered(from slot: Slot) -> ArraySlice<PathLookup> {
        guard let items = streams[slot.stream]?.items, slot.index < items.count else { return [] }
        let end = items[slot.index...].firstIndex { $0.answer != nil } ?? items.endIndex
        return ArraySlice(items[slot.index ..< end].map(\.lookup))
    }

    /// Records a batch's answers for the predictions from `slot` on.
    func record(_ answers: [LookupAnswer], from slot: Slot) {
        batches += 1
        let count = streams[slot.stream]?.items.count ?? 0
        // In place: the stream's array is not copied for each answer.
        for (offset, answer) in answers.enumerated() where slot.index + offset < count {
            streams[slot.stream]?.items[slot.index + offset].answer = answer
        }
    }

    /// The recorded answer of the prediction at `slot`, given out once.
    func answer(at slot: Slot) -> LookupAnswer? {
        guard slot.index < streams[slot.stream]?.items.count ?? 0,
              let answer = streams[slot.stream]?.items[slot.index].answer else { return nil }
        streams[slot.stream]?.items[slot.index].answer = .unusable
        if answer != .unusable { answeredFromBatches += 1 }
        return answer
    }

    /// A read of a file read ahead was answered from its snapshot.
    func countSnapshotRead() { answeredFromBatches += 1 }

    /// A read-ahead batch ran (not a prediction).
    func countReadAhead() {
        batches += 1
        answeredFromBatches += 1
    }

    /// End of the run: a training run with a pattern saves its memo.
    func finish(warn: (String) -> Void) {
        guard memo == nil, let store, case let computed?? = key else { return }
        guard let learned = learned(key: computed) else { return }
        store.save(learned, warn: warn)
    }

    /// What this run learned, if anything worth a memo: a pattern, or a
    /// sequence of at least two lookups the fast path could predict.
    private func learned(key: UInt64) -> CallMemo? {
        let patterns = trainer.patterns()
        let sequence = trainer.sequence.filter { $0.isPredictable(under: policy) }
        guard !patterns.isEmpty || sequence.count >= 2 else { return nil }
        return CallMemo(key: key, patterns: patterns, sequence: sequence.count >= 2 ? sequence : [])
    }

    /// One line for `--verbose`.
    var summary: String {
        let source = memo != nil ? "memo used" : (learned(key: 0) == nil ? "no memo" : "memo trained")
        return "fast path: \(batches) batches answered \(answeredFromBatches) lookups, \(misses) predictions missed (\(source))"
    }
}

/// Learns per-entry lookup sequences: after a listing of a directory, the
/// lookups about one numbered entry up to the first about another form a
/// group; the most frequent group (seen at least twice) is the pattern. A
/// lookup belongs to the deepest listed directory it lies in (a thread's
/// /proc/<pid>/task/<tid>/stat to the task directory, not to /proc).
struct MemoTrainer {
    /// Lookups outside every listing, in order (at most `maximumSequence`).
    private(set) var sequence: [PathLookup] = []
    private var listings: [String: Set<String>] = [:]
    private var current: [String: (name: String, lookups: [EntryLookup])] = [:]
    private var groups: [String: [[EntryLookup]]] = [:]
    private var recorded = 0
    /// Bounds on what one run records (an inspector is not a denial of service).
    static let maximumGroups = 1 << 16
    static let maximumGroupLength = 64
    static let maximumListings = 1 << 12
    static let maximumSequence = 256

    mutating func listed(directory: String, names: [String]) {
        close(directory)
        guard listings[directory] != nil || listings.count < Self.maximumListings else { return }
        listings[directory] = Set(names)
    }

    mutating func observe(_ lookup: PathLookup) {
        guard lookup.fitsAMemoLine else { return }
        var best: (directory: String, name: String)?
        for (directory, names) in listings where directory.count > (best?.directory.count ?? -1) {
            if let name = EntryLookup.entryName(of: lookup.path, in: directory), names.contains(name) { best = (directory, name) }
        }
        guard let (directory, name) = best,
              let entryLookup = EntryLookup.of(lookup, directory: directory, entry: name) else {
            if sequence.count < Self.maximumSequence && lookup.fitsAMemoLine { sequence.append(lookup) }
            return
        }
        if current[directory]?.name != name {
            close(directory)
            current[directory] = (name, [])
        }
        if let count = current[directory]?.lookups.count, count < Self.maximumGroupLength {
            current[directory]?.lookups.append(entryLookup)
        }
    }

    private mutating func close(_ directory: String) {
        guard let group = current.removeValue(forKey: directory) else { return }
        guard recorded < Self.maximumGroups else { return }
        recorded += 1
        groups[directory, default: []].append(group.lookups)
    }

    /// Per directory, the most frequent group seen at least twice.
    func patterns() -> [String: [EntryLookup]] {
        var all = groups
        for (directory, group) in current { all[directory, default: []].append(group.lookups) }
        var result: [String: [EntryLookup]] = [:]
        for (directory, list) in all {
            var counts: [[EntryLookup]: Int] = [:]
            for group in list { counts[group, default: 0] += 1 }
            if let (best, count) = counts.max(by: { ($0.value, $0.key.count) < ($1.value, $1.key.count) }), count >= 2 {
                result[directory] = best
            }
        }
        return result
    }
}
