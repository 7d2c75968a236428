import XCTest
@testable import Shadow

final class PolicyTests: XCTestCase {
    func testDefaults() {
        let p = ShadowPolicy()
        XCTAssertEqual(p.route(absolutePath: "/proc/1/stat"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/proc"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/sys/kernel"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/etc/passwd"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/etc/passwd-"), .local, "component-wise, not string prefix")
        XCTAssertEqual(p.route(absolutePath: "/processes"), .local)
        XCTAssertEqual(p.route(absolutePath: "/run/utmp"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/etc/mtab"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/lib/x86_64-linux-gnu/libc.so.6"), .local)
        XCTAssertEqual(p.route(absolutePath: "/etc/ld.so.cache"), .local)
        XCTAssertEqual(p.route(absolutePath: "/usr/lib/locale/C.utf8/LC_CTYPE"), .local)
        XCTAssertEqual(p.route(absolutePath: "/tmp/x"), .local)
        XCTAssertEqual(p.route(absolutePath: "/dev/kmsg"), .guest, "the kernel log is the guest's (dmesg)")
        XCTAssertEqual(p.route(absolutePath: "/dev/null"), .local)
        XCTAssertTrue(p.forcesNonBlocking(absolutePath: "/dev/kmsg"))
        XCTAssertTrue(p.forcesNonBlocking(absolutePath: "/proc/kmsg"))
        XCTAssertFalse(p.forcesNonBlocking(absolutePath: "/proc/version"))
    }

    func testNormalization() {
        let p = ShadowPolicy()
        XCTAssertEqual(ShadowPolicy.normalize("//proc/./1/../version"), "/proc/version")
        XCTAssertEqual(ShadowPolicy.normalize("/../../proc"), "/proc")
        // A path already normal is returned as it is; anything else is not normal.
        for normal in ["/", "/proc", "/proc/1/stat", "/a/.../b", "/.x/..y/z.", "/sys/module/udp_diag/holders"] {
            XCTAssertTrue(ShadowPolicy.isNormal(normal), normal)
            XCTAssertEqual(ShadowPolicy.normalize(normal), normal)
        }
        for (raw, normal) in [("", "/"), ("proc", "/proc"), ("/proc/", "/proc"), ("//proc", "/proc"), ("/proc//1", "/proc/1"),
                              ("/.", "/"), ("/proc/.", "/proc"), ("/proc/..", "/"), ("/a/./b", "/a/b"), ("/a/../b", "/b")] {
            XCTAssertFalse(ShadowPolicy.isNormal(raw), raw)
            XCTAssertEqual(ShadowPolicy.normalize(raw), normal, raw)
        }
        XCTAssertEqual(p.route(absolutePath: "/tmp/../proc/version"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/proc/../etc/ld.so.cache"), .local)
        XCTAssertEqual(ShadowPolicy.join("/proc", "1/stat"), "/proc/1/stat")
        XCTAssertEqual(ShadowPolicy.join("/", "proc"), "/proc")
        XCTAssertEqual(ShadowPolicy.join("/proc", ""), "/proc")
    }

    func testOverrides() {
        let p = ShadowPolicy(extraGuestPaths: ["/var/log/", "/"], extraLocalPaths: ["/proc/self"])
        XCTAssertEqual(p.route(absolutePath: "/var/log/syslog"), .guest)
        XCTAssertEqual(p.route(absolutePath: "/proc/self/maps"), .local, "longer local prefix wins")
        XCTAssertEqual(p.route(absolutePath: "/home/x"), .guest, "/ is guest now")
        XCTAssertEqual(p.route(absolutePath: "/lib64/ld-linux-x86-64.so.2"), .local, "the loader stays local")
    }

    func testPathsAreMatchedAsBytesByWholeComponents() {
        let p = ShadowPolicy(extraGuestPaths: ["/srv/caf\u{e9}"])
        XCTAssertEqual(p.route(absolutePath: "/srv/caf\u{e9}/menu"), .guest)
        // The same letter decomposed is other bytes: another path to the kernel.
        XCTAssertEqual(p.route(absolutePath: "/srv/cafe\u{301}/menu"), .local)
        XCTAssertEqual(p.route(absolutePath: "/srv/caf\u{e9}s"), .local, "a longer component is not below it")
        XCTAssertEqual(p.route(absolutePath: "/sysfs"), .local)
        XCTAssertEqual(p.route(absolutePath: "/sys"), .guest)
        XCTAssertTrue(ShadowPolicy.isWithin("/anything", "/"))
        XCTAssertFalse(ShadowPolicy.isWithin("/pro", "/proc"))
    }

    func testTheInspectorsOwnProcDirectoryBecomesSelf() {
        let own: Set<Int32> = [4242, 4243]
        var asked = 0
        let ids = { () -> Set<Int32> in asked += 1; return own }
        XCTAssertEqual(InspectorSelfPath.rewrite("/proc/4242/stat", ownIDs: ids), "/proc/self/stat")
        XCTAssertEqual(InspectorSelfPath.rewrite("/proc/4243", ownIDs: ids), "/proc/self")
        XCTAssertEqual(InspectorSelfPath.rewrite("/proc/4243/task/4243/stat", ownIDs: ids), "/proc/self/task/4243/stat")
        XCTAssertEqual(asked, 3)
        for other in ["/proc/1/stat", "/proc/42420/stat", "/proc/4242x/stat", "/proc/04242/stat", "/proc/self/stat"] {
            XCTAssertNil(InspectorSelfPath.rewrite(other, ownIDs: ids), other)
        }
        asked = 0
        for notAPid in ["/proc/net/tcp", "/proc/", "/sys/4242", "/proc/12345678901234567890/stat"] {
            XCTAssertNil(InspectorSelfPath.rewrite(notAPid, ownIDs: ids), notAPid)
        }
        XCTAssertEqual(asked, 0, "the ids are read only for a number after /proc/")
    }

    func testWriteFlags() {
        XCTAssertFalse(ShadowPolicy.openWrites(flags: 0))                  // O_RDONLY
        XCTAssertFalse(ShadowPolicy.openWrites(flags: 0o2000000 | 0o200000)) // O_CLOEXEC|O_DIRECTORY
        XCTAssertTrue(ShadowPolicy.openWrites(flags: 0o1))                 // O_WRONLY
        XCTAssertTrue(ShadowPolicy.openWrites(flags: 0o2))                 // O_RDWR
        XCTAssertTrue(ShadowPolicy.openWrites(flags: 0o100))               // O_CREAT
        XCTAssertTrue(ShadowPolicy.openWrites(flags: 0o1000))              // O_TRUNC
        XCTAssertTrue(ShadowPolicy.openWrites(flags: 0o2000))              // O_APPEND
    }

    func testFdTable() {
        var t = FileDescriptorTable(range: GuestFdRange(lowerBound: 1000, count: 3))
        XCTAssertEqual(t.lowestFree(), 1000)
        t.insert(local: 1000, .init(guestFd: 5, path: "/proc"))
        XCTAssertEqual(t.lowestFree(isTaken: { $0 == 1001 }), 1002)
        XCTAssertEqual(t.entry(rawArgument: 1000)?.guestFd, 5)
        XCTAssertNil(t.entry(rawArgument: 5))
        t.insert(local: 1001, .init(guestFd: 6, path: "/sys"))
        t.insert(local: 1002, .init(guestFd: 7, path: "/sys"))
        XCTAssertNil(t.lowestFree())
        XCTAssertEqual(t.locals(in: 1001, 2000), [1001, 1002])
        XCTAssertEqual(t.remove(local: 1001)?.guestFd, 6)
        XCTAssertEqual(t.lowestFree(atLeast: 1001), 1001)
    }
}
