/*
 * kvmrun: a minimal KVM runner implementing swapvisor's *direct long-mode entry* contract, so the guest kit's
 * entry64 path can be tested before the TypeScript VMM exists. Test tool only.
 *
 *   kvmrun [-m MiB] [-smp N] [-c "cmdline"] guest.elf
 *
 * Devices: COM1 THR (output to stdout, string I/O in one exit), LSR reads 0x60, debug exit at 0xf4
 * (exit status = value), in-kernel irqchip + PIT (with the port 0x61 speaker gate).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int kvm, vm;
static uint8_t *ram;
static uint64_t ram_size = 64 << 20;
static uint64_t entry64, isr_table;
static int run_size;
static uint64_t port_exits, port_bytes;

static void die(const char *m)
{
	perror(m);
	exit(120);
}

static void load_elf(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *f;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	int i;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	f = malloc(st.st_size);
	if (read(fd, f, st.st_size) != st.st_size)
		die("read");
	eh = (Elf64_Ehdr *)f;
	ph = (Elf64_Phdr *)(f + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD) {
			memcpy(ram + ph[i].p_paddr, f + ph[i].p_offset, ph[i].p_filesz);
			memset(ram + ph[i].p_paddr + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
		} else if (ph[i].p_type == PT_NOTE) {
			uint8_t *p = f + ph[i].p_offset, *end = p + ph[i].p_filesz;
			while (p + 12 <= end) {
				uint32_t nsz = *(uint32_t *)p, dsz = *(uint32_t *)(p + 4), type = *(uint32_t *)(p + 8);
				uint8_t *name = p + 12, *desc = name + ((nsz + 3) & ~3u);
				if (type == 0x53560001 && nsz == 10 && !memcmp(name, "swapvisor", 10) && dsz == 16) {
					entry64 = *(uint64_t *)desc;
					isr_table = *(uint64_t *)(desc + 8);
				}
				p = desc + ((dsz + 3) & ~3u);
			}
		}
	}
	if (!entry64)
		fprintf(stderr, "kvmrun: no swapvisor note\n"), exit(120);
	free(f);
	close(fd);
}

static void w64(uint64_t a, uint64_t v) { memcpy(ram + a, &v, 8); }
static void w32(uint64_t a, uint32_t v) { memcpy(ram + a, &v, 4); }
static void w16(uint64_t a, uint16_t v) { memcpy(ram + a, &v, 2); }

static void setup_tables(const char *cmdline)
{
	int i;
	/* GDT at 0x500 */
	uint64_t gdt[7] = {0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0x00cff2000000ffff, 0x00affa000000ffff, 0, 0};
	uint64_t tss = 0x4000, lim = 0x68 + 0x2000;
	gdt[5] = (lim & 0xffff) | ((tss & 0xffffff) << 16) | (0x8bULL << 40) | (((lim >> 16) & 0xf) << 48) |
		 (((tss >> 24) & 0xff) << 56);
	memcpy(ram + 0x500, gdt, sizeof(gdt));
	/* IDT at 0x1000 */
	for (i = 0; i < 256; i++) {
		uint64_t off = isr_table + 16 * i, dpl = i == 3 ? 3 : 0;
		w64(0x1000 + 16 * i,
		    (off & 0xffff) | (0x08ULL << 16) | ((0x8eULL | dpl << 5) << 40) | (((off >> 16) & 0xffff) << 48));
		w64(0x1000 + 16 * i + 8, off >> 32);
	}
	/* TSS at 0x4000: rsp0 = 0x20000, I/O bitmap at +0x68 all zero, terminator */
	memset(ram + tss, 0, 0x68 + 0x2001);
	w64(tss + 4, 0x20000);
	w16(tss + 0x66, 0x68);
	ram[tss + 0x68 + 0x2000] = 0xff;
	/* page tables: PML4 0x9000, PDPT 0xa000, PDs 0xb000..0xefff */
	w64(0x9000, 0xa000 | 7);
	for (i = 0; i < 4; i++)
		w64(0xa000 + 8 * i, (0xb000 + 0x1000 * i) | 7);
	for (i = 0; i < 2048; i++)
		w64(0xb000 + 8 * i, ((uint64_t)i << 21) | 0x87);
	/* hvm_start_info at 0x2000, memmap at 0x2100, cmdline at 0x3000 */
	memset(ram + 0x2000, 0, 0x100);
	w32(0x2000, 0x336ec578);
	w32(0x2004, 1);
	w64(0x2018, 0x3000);
	w64(0x2028, 0x2100);
	w32(0x2030, 3);
	w64(0x2100, 0), w64(0x2108, 0x9fc00), w32(0x2110, 1);
	w64(0x2118, 0x9fc00), w64(0x2120, 0x100000 - 0x9fc00), w32(0x2128, 2);
	w64(0x2130, 0x100000), w64(0x2138, ram_size - 0x100000), w32(0x2140, 1);
	snprintf((char *)ram + 0x3000, 0x1000, "%s", cmdline);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = code;
	s->db = !code;
	s->g = 1;
}

struct vcpu {
	int fd, id;
	struct kvm_run *run;
	pthread_t th;
};

static void *vcpu_loop(void *arg)
{
	struct vcpu *v = arg;
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		struct kvm_run *r = v->run;
		switch (r->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *d = (uint8_t *)r + r->io.data_offset;
			uint32_t n = r->io.size * r->io.count;
			__atomic_fetch_add(&port_exits, 1, __ATOMIC_RELAXED);
			if (getenv("KVMRUN_TRACE"))
				fprintf(stderr, "[io %s port=%#x size=%u count=%u]\n", r->io.direction ? "out" : "in", r->io.port, r->io.size, r->io.count);
			if (r->io.direction == KVM_EXIT_IO_OUT) {
				if (r->io.port == 0x3f8) {
					fwrite(d, 1, n, stdout);
					fflush(stdout);
					__atomic_fetch_add(&port_bytes, n, __ATOMIC_RELAXED);
				} else if (r->io.port == 0xf4) {
					fflush(stdout);
					fprintf(stderr, "kvmrun: exit status %u, %llu port exits, %llu console bytes\n", d[0],
						(unsigned long long)port_exits, (unsigned long long)port_bytes);
					exit(d[0]);
				}
			} else {
				memset(d, r->io.port == 0x3fd ? 0x60 : 0xff, n);
			}
			break;
		}
		case KVM_EXIT_MMIO:
			if (!r->mmio.is_write)
				memset(r->mmio.data, 0xff, r->mmio.len);
			break;
		default:
			fprintf(stderr, "kvmrun: vcpu %d exit reason %u (suberror %u)\n", v->id, r->exit_reason,
				r->internal.suberror);
			exit(121);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *cmdline = "";
	int ncpu = 1, i;
	struct vcpu cpus[2];
	while (argc > 2) {
		if (!strcmp(argv[1], "-m"))
			ram_size = strtoull(argv[2], 0, 0) << 20;
		else if (!strcmp(argv[1], "-smp"))
			ncpu = atoi(argv[2]);
		else if (!strcmp(argv[1], "-c"))
			cmdline = argv[2];
		else
			break;
		argc -= 2, argv += 2;
	}
	if (argc != 2 || ncpu < 1 || ncpu > 2)
		fprintf(stderr, "usage: kvmrun [-m MiB] [-smp 1|2] [-c cmdline] guest.elf\n"), exit(120);

	if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
		die("/dev/kvm");
	if ((vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0)
		die("KVM_CREATE_VM");
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = getenv("KVMRUN_NO_SPEAKER") ? 0 : KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die("KVM_CREATE_PIT2");
	ram = mmap(0, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap");
	struct kvm_userspace_memory_region mr = {.slot = 0, .guest_phys_addr = 0, .memory_size = ram_size,
						 .userspace_addr = (uint64_t)ram};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	load_elf(argv[1]);
	setup_tables(cmdline);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	cpuid->nent = 256;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		die("KVM_GET_SUPPORTED_CPUID");

	for (i = 0; i < ncpu; i++) {
		struct vcpu *v = &cpus[i];
		v->id = i;
		if ((v->fd = ioctl(vm, KVM_CREATE_VCPU, i)) < 0)
			die("KVM_CREATE_VCPU");
		for (uint32_t e = 0; e < cpuid->nent; e++)
			if (cpuid->entries[e].function == 1) {
				cpuid->entries[e].ebx = (cpuid->entries[e].ebx & 0x00ffffff) | (uint32_t)i << 24;
			}
		if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
			die("KVM_SET_CPUID2");
		v->run = mmap(0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED)
			die("mmap run");
		if (i > 0)
			continue; /* APs wait for INIT/SIPI in the in-kernel LAPIC */
		struct kvm_sregs sr;
		if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
			die("KVM_GET_SREGS");
		seg(&sr.cs, 0x08, 0xb, 1);
		seg(&sr.ds, 0x10, 0x3, 0);
		sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
		memset(&sr.tr, 0, sizeof(sr.tr));
		sr.tr.selector = 0x28;
		sr.tr.base = 0x4000;
		sr.tr.limit = 0x68 + 0x2000;
		sr.tr.type = 0xb;
		sr.tr.present = 1;
		sr.gdt.base = 0x500;
		sr.gdt.limit = 7 * 8 - 1;
		sr.idt.base = 0x1000;
		sr.idt.limit = 0xfff;
		sr.cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
		sr.cr3 = 0x9000;
		sr.cr4 = 0x20;      /* PAE */
		sr.efer = 0x500;    /* LMA LME */
		if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
			die("KVM_SET_SREGS");
		struct kvm_regs rg;
		memset(&rg, 0, sizeof(rg));
		rg.rip = entry64;
		rg.rsp = 0x20000;
		rg.rbx = 0x2000;
		rg.rflags = 2;
		if (ioctl(v->fd, KVM_SET_REGS, &rg) < 0)
			die("KVM_SET_REGS");
	}
	for (i = 1; i < ncpu; i++)
		pthread_create(&cpus[i].th, 0, vcpu_loop, &cpus[i]);
	vcpu_loop(&cpus[0]);
	return 0;
}
