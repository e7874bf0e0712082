#include "textflag.h"

// Vector sums of two sources, 128 bytes per iteration. The callers pass
// n, a positive multiple of 128, and handle the rest of the elements.
// out may be x or y; out2 is neither.

// func addF32(out, x, y *byte, n int) and its kin: out = x + y.
#define ADD1(name, ADD) \
TEXT name(SB), NOSPLIT, $0-32 \
	MOVQ out+0(FP), DI \
	MOVQ x+8(FP), SI \
	MOVQ y+16(FP), DX \
	MOVQ n+24(FP), CX \
loop: \
	VMOVDQU 0(SI), Y0 \
	VMOVDQU 32(SI), Y1 \
	VMOVDQU 64(SI), Y2 \
	VMOVDQU 96(SI), Y3 \
	ADD 0(DX), Y0, Y0 \
	ADD 32(DX), Y1, Y1 \
	ADD 64(DX), Y2, Y2 \
	ADD 96(DX), Y3, Y3 \
	VMOVDQU Y0, 0(DI) \
	VMOVDQU Y1, 32(DI) \
	VMOVDQU Y2, 64(DI) \
	VMOVDQU Y3, 96(DI) \
	ADDQ $128, SI \
	ADDQ $128, DX \
	ADDQ $128, DI \
	SUBQ $128, CX \
	JNZ loop \
	VZEROUPPER \
	RET

// func addF32x2(out, out2, x, y *byte, n int): out = out2 = x + y. The
// NT variants write out2, which must be 32-byte aligned, with
// non-temporal stores and end with SFENCE.
#define ADD2(name, ADD, STORE2, FENCE) \
TEXT name(SB), NOSPLIT, $0-40 \
	MOVQ out+0(FP), DI \
	MOVQ out2+8(FP), R8 \
	MOVQ x+16(FP), SI \
	MOVQ y+24(FP), DX \
	MOVQ n+32(FP), CX \
loop: \
	VMOVDQU 0(SI), Y0 \
	VMOVDQU 32(SI), Y1 \
	VMOVDQU 64(SI), Y2 \
	VMOVDQU 96(SI), Y3 \
	ADD 0(DX), Y0, Y0 \
	ADD 32(DX), Y1, Y1 \
	ADD 64(DX), Y2, Y2 \
	ADD 96(DX), Y3, Y3 \
	VMOVDQU Y0, 0(DI) \
	VMOVDQU Y1, 32(DI) \
	VMOVDQU Y2, 64(DI) \
	VMOVDQU Y3, 96(DI) \
	STORE2 Y0, 0(R8) \
	STORE2 Y1, 32(R8) \
	STORE2 Y2, 64(R8) \
	STORE2 Y3, 96(R8) \
	ADDQ $128, SI \
	ADDQ $128, DX \
	ADDQ $128, DI \
	ADDQ $128, R8 \
	SUBQ $128, CX \
	JNZ loop \
	FENCE \
	VZEROUPPER \
	RET

ADD1(·addF32, VADDPS)
ADD1(·addF64, VADDPD)
ADD1(·addI32, VPADDD)
ADD1(·addI64, VPADDQ)
#define NOFENCE BYTE $0x90 // NOP

ADD2(·addF32x2, VADDPS, VMOVDQU, NOFENCE)
ADD2(·addF64x2, VADDPD, VMOVDQU, NOFENCE)
ADD2(·addI32x2, VPADDD, VMOVDQU, NOFENCE)
ADD2(·addI64x2, VPADDQ, VMOVDQU, NOFENCE)
ADD2(·addF32x2NT, VADDPS, VMOVNTDQ, SFENCE)
ADD2(·addF64x2NT, VADDPD, VMOVNTDQ, SFENCE)
ADD2(·addI32x2NT, VPADDD, VMOVNTDQ, SFENCE)
ADD2(·addI64x2NT, VPADDQ, VMOVNTDQ, SFENCE)

// func copyNT(dst, src *byte, n int): dst = src with non-temporal stores;
// dst 32-byte aligned, n a positive multiple of 128.
TEXT ·copyNT(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
ntloop:
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VMOVNTDQ Y0, 0(DI)
	VMOVNTDQ Y1, 32(DI)
	VMOVNTDQ Y2, 64(DI)
	VMOVNTDQ Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $128, CX
	JNZ ntloop
	SFENCE
	VZEROUPPER
	RET
