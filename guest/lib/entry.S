/*
 * swapvisor guest kit: entry points, descriptor tables, interrupt stubs, AP trampoline.
 *
 * Two ways in:
 *   pvh_entry32 - PVH (XEN_ELFNOTE_PHYS32_ENTRY): 32-bit protected mode, paging off, EBX = hvm_start_info.
 *                 Builds our own identity map, GDT, TSS, IDT, then goes to long mode.
 *   entry64     - swapvisor direct entry (note 0x53560001): long mode, CPL0, the VMM's GDT/IDT/TSS/page tables,
 *                 RBX = hvm_start_info, RSP = 0x20000. Nothing is reloaded.
 * Both call kinit(start_info, path) in kernel.c, which ends in user mode.
 */

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_KCODE32 0x48
#define MSR_EFER 0xc0000080

/* ------------------------------------------------------------------ ELF notes */
	.section .note.swapvisor, "a"
	.balign 4
	.long 10                /* namesz: "swapvisor\0" */
	.long 16                /* descsz */
	.long 0x53560001        /* type */
	.asciz "swapvisor"
	.balign 4
	.quad entry64           /* u64 physical address of the 64-bit entry */
	.quad isr_table         /* u64 address of the 256 x 16-byte interrupt stub table */

	.section .note.Xen, "a"
	.balign 4
	.long 4                 /* namesz: "Xen\0" */
	.long 4                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry32       /* 32-bit physical entry address (linker script puts 4 zero bytes after it) */

/* ------------------------------------------------------------------ PVH 32-bit entry */
	.section .text.entry, "ax"
	.code32
	.globl pvh_entry32
pvh_entry32:
	cli
	cld
	movl %ebx, %esi                 /* keep hvm_start_info in ESI */

	/* Identity map of the first 4 GiB with 2 MiB pages, P|RW|US (|PS in the PDs). bss is zero. */
	movl $(pdpt + 0x07), pml4
	movl $(pd + 0x0007), pdpt + 0
	movl $(pd + 0x1007), pdpt + 8
	movl $(pd + 0x2007), pdpt + 16
	movl $(pd + 0x3007), pdpt + 24
	movl $pd, %edi
	movl $0x87, %eax
	xorl %edx, %edx
	movl $2048, %ecx
1:	movl %eax, (%edi)
	movl %edx, 4(%edi)
	addl $0x200000, %eax
	adcl $0, %edx
	addl $8, %edi
	decl %ecx
	jnz 1b

	lgdt gdt_ptr
	movl %cr4, %eax
	orl $0x20, %eax                 /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax                /* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax           /* PG | PE */
	movl %eax, %cr0
	ljmp $SEL_KCODE, $pvh_entry64

	.code64
pvh_entry64:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	movq $kstack_bsp_top, %rsp
	movl %esi, %edi                 /* start_info (zero-extended) */
	movl $1, %esi                   /* path = PVH */
	call kinit
2:	cli
	hlt
	jmp 2b

/* ------------------------------------------------------------------ direct long-mode entry */
	.globl entry64
entry64:
	cli
	cld
	movq %rbx, %rdi                 /* start_info */
	xorl %esi, %esi                 /* path = direct */
	andq $-16, %rsp                 /* VMM stack (0x20000); TSS.rsp0 points at the same top */
	call kinit
3:	cli
	hlt
	jmp 3b

/* ------------------------------------------------------------------ user mode */
	/* enter_user(rip, rsp, arg): iretq to CPL3 with IF=1. Starts at user_entry which calls rip(arg). */
	.globl enter_user
enter_user:
	movq %rdi, %rax
	movq %rdx, %rdi
	pushq $0x1b                     /* SS */
	pushq %rsi                      /* RSP */
	pushq $0x202                    /* RFLAGS: IF */
	pushq $0x23                     /* CS */
	pushq $user_entry               /* RIP */
	xorl %esi, %esi
	xorl %edx, %edx
	xorl %ecx, %ecx
	xorl %ebx, %ebx
	xorl %ebp, %ebp
	xorl %r8d, %r8d
	xorl %r9d, %r9d
	xorl %r10d, %r10d
	xorl %r11d, %r11d
	iretq

user_entry:                             /* CPL3: rax = function, rdi = argument, rsp 16-aligned */
	call *%rax
	movl %eax, %edi
	call sys_exit

/* ------------------------------------------------------------------ interrupt stubs */
	.text
	.balign 16
	.globl isr_table
isr_table:
	.set vec, 0
	.rept 256
	.balign 16
	.if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
	pushq $0                        /* dummy error code */
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr
	.balign 16
	.globl isr_table_end
isr_table_end:

isr_common:
	cld
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call trap
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp                  /* vector, error code */
	iretq

/* ------------------------------------------------------------------ AP start-up */
	/* Real-mode trampoline, copied to 0x8000 (SIPI vector 0x08), CS = 0x0800, IP = 0. */
	.globl ap_tramp_start, ap_tramp_end
	.code16
ap_tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl ap_tramp_gdtr - ap_tramp_start
	movl %cr0, %eax
	andl $0x9fffffff, %eax          /* clear CD, NW */
	orl $1, %eax                    /* PE */
	movl %eax, %cr0
	ljmpl $SEL_KCODE32, $ap_entry32
	.balign 8
ap_tramp_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:

	.code32
ap_entry32:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr4, %eax
	orl $0x20, %eax                 /* PAE */
	movl %eax, %cr4
	movl ap_cr3, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax                /* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax           /* PG | PE */
	movl %eax, %cr0
	ljmp $SEL_KCODE, $ap_entry64

	.code64
ap_entry64:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	movq $kstack_ap_top, %rsp
	call ap_kinit
4:	cli
	hlt
	jmp 4b

/* ------------------------------------------------------------------ our own GDT (PVH path and the AP) */
	.data
	.balign 16
	.globl gdt, gdt_end, gdt_ptr
gdt:
	.quad 0                         /* 0x00 */
	.quad 0x00af9a000000ffff        /* 0x08 kernel code64 */
	.quad 0x00cf92000000ffff        /* 0x10 kernel data (flat, also valid in 32-bit) */
	.quad 0x00cff2000000ffff        /* 0x18 user data, DPL3 */
	.quad 0x00affa000000ffff        /* 0x20 user code64, DPL3 */
	.quad 0, 0                      /* 0x28 TSS of the BSP (filled by kinit) */
	.quad 0, 0                      /* 0x38 TSS of the AP (filled by kinit) */
	.quad 0x00cf9a000000ffff        /* 0x48 kernel code32 (AP trampoline) */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

/* ------------------------------------------------------------------ page tables and stacks */
	.bss
	.balign 4096
	.globl pml4, pdpt, pd
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.balign 16
	.globl kstack_bsp_top, kstack_ap_top
	.skip 16384
kstack_bsp_top:
	.skip 16384
kstack_ap_top:
	.globl user_stack_top
	.skip 65536                     /* user stack of the BSP */
user_stack_top:
	.globl ap_cr3
	.balign 8
ap_cr3:	.skip 8
