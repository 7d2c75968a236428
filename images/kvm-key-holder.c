/* kvm-key-holder: keeps the L1 kernel's KVM static keys switched on for
 * the life of the KVM host's L1 (images/kvm-host-init starts it before the
 * command). Runs inside the L1 only, never in a guest.
 *
 * Why: every VM that swvmm creates and destroys in the L1 flips static keys
 * of the L1's kernel (traced with a kprobe on jump_label_update while swvmm
 * booted two guests): preempt_notifier_key in __schedule when the first VM
 * is created and the last one destroyed, and KVM's apic_sw_disabled when a
 * vCPU's local APIC is created and when its guest enables it. Each flip
 * patches live kernel text with text_poke_bp (an int3 first, then the new
 * instruction). Under QEMU's multi-threaded TCG another L1 vCPU now and then
 * still runs the int3 after the patch is complete, and the L1 dies ("Oops:
 * int3" at __schedule+0x428, CI). A key whose count never falls to zero is
 * never patched: this program holds one reference to each, so the guests'
 * own increments and decrements only count.
 *
 * What it holds (Linux 6.12, virt/kvm/kvm_main.c, arch/x86/kvm/lapic.c, x86.c):
 *   a VM                           preempt_notifier_key (kvm_create_vm)
 *   a vCPU with an in-kernel APIC  apic_sw_disabled (software-disabled until
 *                                  its guest writes the SVR; this one never runs)
 *   that APIC disabled in its MSR  apic_hw_disabled
 *   a vCPU of a VM without irqchip kvm_has_noapic_vcpu
 * The keys only select fast paths; holding them changes no guest's behaviour.
 *
 * Exit status: 0 never (it waits until the L1 powers off), 1 if /dev/kvm or
 * the VM cannot be made (the L1 then goes on without it). */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* IA32_APIC_BASE (Intel SDM vol. 3A, 11.4.4); a value without its enable bit
 * (bit 11) disables the local APIC. */
#define MSR_IA32_APICBASE 0x1b

static int make_vm(int kvm, const char *what)
{
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        fprintf(stderr, "kvm-key-holder: KVM_CREATE_VM (%s): %m\n", what);
    return vm;
}

static void disable_apic(int vcpu)
{
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entry;
    } msrs;
    memset(&msrs, 0, sizeof msrs);
    msrs.header.nmsrs = 1;
    msrs.entry.index = MSR_IA32_APICBASE;
    msrs.entry.data = 0;
    if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
        fprintf(stderr, "kvm-key-holder: note: cannot disable the APIC (KVM_SET_MSRS): %m\n");
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fprintf(stderr, "kvm-key-holder: /dev/kvm: %m\n");
        return 1;
    }
    int with_apic = make_vm(kvm, "with irqchip");
    if (with_apic < 0)
        return 1;
    /* Each step is worth having on its own: a failure is noted, not fatal. */
    if (ioctl(with_apic, KVM_CREATE_IRQCHIP, 0) < 0) {
        fprintf(stderr, "kvm-key-holder: note: KVM_CREATE_IRQCHIP: %m\n");
    } else {
        int vcpu = ioctl(with_apic, KVM_CREATE_VCPU, 0);
        if (vcpu < 0)
            fprintf(stderr, "kvm-key-holder: note: KVM_CREATE_VCPU (with APIC): %m\n");
        else
            disable_apic(vcpu);
    }
    int without_apic = make_vm(kvm, "without irqchip");
    if (without_apic >= 0 && ioctl(without_apic, KVM_CREATE_VCPU, 0) < 0)
        fprintf(stderr, "kvm-key-holder: note: KVM_CREATE_VCPU (without APIC): %m\n");
    for (;;)
        pause();
}
