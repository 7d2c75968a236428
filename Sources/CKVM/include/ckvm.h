// CKVM: the parts of <linux/kvm.h> Swift cannot import by itself.
//
// Swift imports C structs (kvm_regs, kvm_sregs, kvm_run, ...) directly, but
// not function-like macros such as KVM_RUN = _IO(KVMIO, 0x80), and it cannot
// call the variadic ioctl(2). This header turns each request number we use
// into a named constant and offers fixed-signature ioctl wrappers. Nothing
// here has policy; the Swift types in Sources/VMM/KVM own the fds.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <stddef.h>

// ---- ioctl entry points (ioctl(2) is variadic; Swift needs fixed arities) --
int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument);
int ckvm_ioctl_value(int fd, unsigned long request, unsigned long argument);

// ---- the host CPU's own CPUID (Swift has no inline assembly) ---------------
// Leaf `leaf`, sub-leaf `subleaf` of the CPU this runs on: eax, ebx, ecx, edx.
void ckvm_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

// ---- /dev/kvm (system) ioctls ----------------------------------------------
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;

// ---- VM ioctls -------------------------------------------------------------
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;

// ---- vCPU ioctls -----------------------------------------------------------
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_SET_GUEST_DEBUG = KVM_SET_GUEST_DEBUG;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;

// ---- capabilities (KVM_CHECK_EXTENSION arguments) --------------------------
static const int CKVM_CAP_IRQCHIP = KVM_CAP_IRQCHIP;
static const int CKVM_CAP_HLT = KVM_CAP_HLT;
static const int CKVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
static const int CKVM_CAP_SET_TSS_ADDR = KVM_CAP_SET_TSS_ADDR;
static const int CKVM_CAP_EXT_CPUID = KVM_CAP_EXT_CPUID;
static const int CKVM_CAP_NR_VCPUS = KVM_CAP_NR_VCPUS;
static const int CKVM_CAP_MAX_VCPUS = KVM_CAP_MAX_VCPUS;
static const int CKVM_CAP_PIT2 = KVM_CAP_PIT2;
static const int CKVM_CAP_SET_IDENTITY_MAP_ADDR = KVM_CAP_SET_IDENTITY_MAP_ADDR;
static const int CKVM_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT;
static const int CKVM_CAP_SET_GUEST_DEBUG = KVM_CAP_SET_GUEST_DEBUG;
static const int CKVM_CAP_READONLY_MEM = KVM_CAP_READONLY_MEM;
static const int CKVM_CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS;

// ---- KVM_RUN exit reasons (kvm_run.exit_reason) -----------------------------
static const uint32_t CKVM_EXIT_UNKNOWN = KVM_EXIT_UNKNOWN;
static const uint32_t CKVM_EXIT_EXCEPTION = KVM_EXIT_EXCEPTION;
static const uint32_t CKVM_EXIT_IO = KVM_EXIT_IO;
static const uint32_t CKVM_EXIT_HYPERCALL = KVM_EXIT_HYPERCALL;
static const uint32_t CKVM_EXIT_DEBUG = KVM_EXIT_DEBUG;
static const uint32_t CKVM_EXIT_HLT = KVM_EXIT_HLT;
static const uint32_t CKVM_EXIT_MMIO = KVM_EXIT_MMIO;
static const uint32_t CKVM_EXIT_IRQ_WINDOW_OPEN = KVM_EXIT_IRQ_WINDOW_OPEN;
static const uint32_t CKVM_EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN;
static const uint32_t CKVM_EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY;
static const uint32_t CKVM_EXIT_INTR = KVM_EXIT_INTR;
static const uint32_t CKVM_EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR;
static const uint32_t CKVM_EXIT_SYSTEM_EVENT = KVM_EXIT_SYSTEM_EVENT;
static const uint32_t CKVM_EXIT_IO_IN = KVM_EXIT_IO_IN;
static const uint32_t CKVM_EXIT_IO_OUT = KVM_EXIT_IO_OUT;
static const uint32_t CKVM_INTERNAL_ERROR_EMULATION = KVM_INTERNAL_ERROR_EMULATION;

// ---- guest debug flags (kvm_guest_debug.control) ----------------------------
static const uint32_t CKVM_GUESTDBG_ENABLE = KVM_GUESTDBG_ENABLE;
static const uint32_t CKVM_GUESTDBG_SINGLESTEP = KVM_GUESTDBG_SINGLESTEP;

// ---- sizes and limits -------------------------------------------------------
/// KVM_GET_API_VERSION must return this (the API has been stable since 2.6.22).
static const int CKVM_API_VERSION = KVM_API_VERSION;
/// Size of struct kvm_lapic_state.regs (KVM_APIC_REG_SIZE).
static const int CKVM_APIC_REG_SIZE = KVM_APIC_REG_SIZE;

// ---- kvm_run layout ----------------------------------------------------------
/// Offset of the MMIO exit's data bytes inside the run area (Swift cannot take
/// offsets through the anonymous exit union).
static const size_t CKVM_RUN_MMIO_DATA_OFFSET = offsetof(struct kvm_run, mmio.data);

#endif
