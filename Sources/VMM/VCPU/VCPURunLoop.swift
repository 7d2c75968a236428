extension VCPURunner {
    /// One vCPU's thread: take events, enter the guest, hand the exit to the
    /// vCPU's exit handler and then the buses, repeat; until the
    /// machine stops.
    ///
    /// The exit request is cleared before the events are taken and the stop
    /// is checked after: an event or stop that arrives later has set
    /// `immediate_exit` again, so KVM_RUN returns at once instead of losing it.
    func runLoop(_ handle: VCPUHandle) {
        let vcpu = handle.vcpu
        defer { handle.finish() }
        if vcpu.id == 0 { onFirstEntry?() }
        while true {
            vcpu.clearExitRequest()
            let state = handle.takeEvents()
            if isStopping { return }
            if state == .paused {
                handle.waitForEvent()
                continue
            }
            let exit: VMExit
            handle.recordEntry()
            do {
                exit = try vcpu.run()
            } catch {
                stop(.hostError("vCPU \(vcpu.id): \(error)"))
                return
            }
            statistics.record(exit.name)
            exitTracer?.trace(exit, vcpu: vcpu)
            if let handler = handle.recordExit(exit.name) {
                switch handler(exit, vcpu) {
                case .handled: continue
                case .pause: handle.enterPause(); continue
                case .notHandled: break
                }
            }
            handleExit(exit, on: vcpu)
        }
    }

    /// The machine's own handling of one exit.
    private func handleExit(_ exit: VMExit, on vcpu: VirtualCPU) {
        switch exit {
        case let .portIO(io):
            ports.dispatch(io)
        case let .mmio(access):
            if access.isWrite {
                mmio.write(address: access.address, data: UnsafeRawBufferPointer(access.data))
            } else {
                mmio.read(address: access.address, into: access.data)
            }
        case .interrupted:
            break
        case .halt:
            // With the in-kernel LAPIC, KVM handles HLT itself; one reaching us means the guest halted for good.
            stop(.guestStopped("all work done: vCPU \(vcpu.id) halted"))
        case let .systemEvent(type):
            stop(.guestStopped("system event \(type) (reset or power-off)"))
        case .shutdown, .internalError, .failedEntry, .exception, .debug, .other:
            // A debug exit nobody's exit handler claimed is as unexpected as a crash.
            let report = FailureReport(exit: exit, vcpu: vcpu, memory: memory)
            if report.isEmulationFailure, !HostPlatform.hasHardwareVirtualization {
                stop(.platformLimit(report))
            } else {
                stop(.guestFailed(report))
            }
        }
    }
}
