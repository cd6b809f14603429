//go:build !purego

#include "textflag.h"

// AVX2+FMA kernels for the float32 GELU and layer norm (declared in simd_amd64.go). Every one
// computes in float64 lanes, four float32 values at a time (VCVTPS2PD), so that its results
// are those of the pure-Go loops up to the rounding of a fused multiply-add or of a
// reordered float64 sum. Lengths are multiples of 4 (package nn does the tails).

DATA geluConst<>+0(SB)/8, $8.0  // normRange
DATA geluConst<>+8(SB)/8, $32.0 // normSteps
DATA geluConst<>+16(SB)/8, $1.0
DATA geluConst<>+24(SB)/8, $-8.0
GLOBL geluConst<>(SB), RODATA|NOPTR, $32

// GELU_SETUP broadcasts the constants: Y8 = 8, Y9 = 32, Y10 = 1, Y11 = −8, X12 = 511 (the
// interval mask) in int32 lanes.
#define GELU_SETUP \
	VBROADCASTSD geluConst<>+0(SB), Y8; \
	VBROADCASTSD geluConst<>+8(SB), Y9; \
	VBROADCASTSD geluConst<>+16(SB), Y10; \
	VBROADCASTSD geluConst<>+24(SB), Y11; \
	MOVL $511, R10; \
	VMOVD R10, X12; \
	VPBROADCASTD X12, X12

// GELU_LOOKUP evaluates the table at AX (package nn's cubic Hermite table: 512 intervals of
// coefficients a, b, c, d, 32 bytes each) for four float32 at (SI) into Y5, as interp and
// outside do: the cubic of interval i = trunc((x+8)·32) at t = (x+8)·32 − i inside
// (−8, 8), 1 at or above 8, 0 at or below −8, NaN for NaN (out-of-range lanes read
// interval i & 511, a harmless in-table read, and are then replaced). Y0 keeps x. The four
// lanes' intervals are loaded whole and transposed (eight shuffles): on this kind of CPU that
// is about twice as fast as four VGATHERDPDs.
#define GELU_LOOKUP \
	VCVTPS2PD (SI), Y0; \
	VADDPD Y8, Y0, Y1; \
	VMULPD Y9, Y1, Y1; \
	VROUNDPD $3, Y1, Y2; \
	VSUBPD Y2, Y1, Y1; \
	VCVTTPD2DQY Y2, X3; \
	VPAND X12, X3, X3; \
	VPSLLD $2, X3, X3; \
	VMOVQ X3, R11; \
	VPEXTRQ $1, X3, R12; \
	MOVL R11, R13; \
	SHRQ $32, R11; \
	MOVL R12, BX; \
	SHRQ $32, R12; \
	VMOVUPD (AX)(R13*8), Y4; \
	VMOVUPD (AX)(R11*8), Y5; \
	VMOVUPD (AX)(BX*8), Y6; \
	VMOVUPD (AX)(R12*8), Y7; \
	VUNPCKLPD Y5, Y4, Y2; \
	VUNPCKHPD Y5, Y4, Y4; \
	VUNPCKLPD Y7, Y6, Y5; \
	VUNPCKHPD Y7, Y6, Y6; \
	VPERM2F128 $0x31, Y6, Y4, Y7; \
	VPERM2F128 $0x31, Y5, Y2, Y3; \
	VPERM2F128 $0x20, Y6, Y4, Y4; \
	VPERM2F128 $0x20, Y5, Y2, Y2; \
	VFMADD213PD Y3, Y1, Y7; \
	VFMADD213PD Y4, Y1, Y7; \
	VFMADD213PD Y2, Y1, Y7; \
	VCMPPD $0x1e, Y11, Y0, Y2; \
	VCMPPD $0x11, Y8, Y0, Y4; \
	VANDPD Y4, Y2, Y2; \
	VCMPPD $0x1d, Y8, Y0, Y4; \
	VANDPD Y10, Y4, Y4; \
	VCMPPD $3, Y0, Y0, Y6; \
	VANDPD Y0, Y6, Y6; \
	VORPD Y6, Y4, Y4; \
	VBLENDVPD Y2, Y7, Y4, Y5

// func GELUForward(tab *[2048]float64, y, x []float32)
TEXT ·GELUForward(SB), NOSPLIT, $0-56
	MOVQ tab+0(FP), AX
	MOVQ y_base+8(FP), DI
	MOVQ x_base+32(FP), SI
	MOVQ x_len+40(FP), CX
	SHRQ $2, CX
	JZ   gfdone
	GELU_SETUP

gfloop:
	GELU_LOOKUP
	VMULPD     Y5, Y0, Y5
	VCVTPD2PSY Y5, X5
	VMOVUPS    X5, (DI)
	ADDQ       $16, SI
	ADDQ       $16, DI
	DECQ       CX
	JNZ        gfloop
	VZEROUPPER

gfdone:
	RET

// func GELUBackward(tab *[2048]float64, dx, gy, x []float32)
TEXT ·GELUBackward(SB), NOSPLIT, $0-80
	MOVQ tab+0(FP), AX
	MOVQ dx_base+8(FP), DI
	MOVQ gy_base+32(FP), DX
	MOVQ x_base+56(FP), SI
	MOVQ x_len+64(FP), CX
	SHRQ $2, CX
	JZ   gbdone
	GELU_SETUP

gbloop:
	GELU_LOOKUP
	VCVTPD2PSY Y5, X5
	VMULPS     (DX), X5, X5
	VMOVUPS    X5, (DI)
	ADDQ       $16, SI
	ADDQ       $16, DX
	ADDQ       $16, DI
	DECQ       CX
	JNZ        gbloop
	VZEROUPPER

gbdone:
	RET

// HSUM_Y0 leaves the sum of Y0's four float64 lanes in X0's low lane.
#define HSUM_Y0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPD       X1, X0, X0; \
	VUNPCKHPD    X0, X0, X1; \
	VADDSD       X1, X0, X0

// func Sum(x []float32) float64
TEXT ·Sum(SB), NOSPLIT, $0-32
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3

sum16:
	CMPQ      CX, $16
	JL        sum4
	VCVTPS2PD (SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VADDPD    Y4, Y0, Y0
	VADDPD    Y5, Y1, Y1
	VADDPD    Y6, Y2, Y2
	VADDPD    Y7, Y3, Y3
	ADDQ      $64, SI
	SUBQ      $16, CX
	JMP       sum16

sum4:
	CMPQ      CX, $4
	JL        sumdone
	VCVTPS2PD (SI), Y4
	VADDPD    Y4, Y0, Y0
	ADDQ      $16, SI
	SUBQ      $4, CX
	JMP       sum4

sumdone:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	HSUM_Y0
	VZEROUPPER
	MOVSD  X0, ret+24(FP)
	RET

// func SqDev(x []float32, mean float64) float64
TEXT ·SqDev(SB), NOSPLIT, $0-40
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSD mean+24(FP), Y8
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3

sq16:
	CMPQ        CX, $16
	JL          sq4
	VCVTPS2PD   (SI), Y4
	VCVTPS2PD   16(SI), Y5
	VCVTPS2PD   32(SI), Y6
	VCVTPS2PD   48(SI), Y7
	VSUBPD      Y8, Y4, Y4
	VSUBPD      Y8, Y5, Y5
	VSUBPD      Y8, Y6, Y6
	VSUBPD      Y8, Y7, Y7
	VFMADD231PD Y4, Y4, Y0
	VFMADD231PD Y5, Y5, Y1
	VFMADD231PD Y6, Y6, Y2
	VFMADD231PD Y7, Y7, Y3
	ADDQ        $64, SI
	SUBQ        $16, CX
	JMP         sq16

sq4:
	CMPQ        CX, $4
	JL          sqdone
	VCVTPS2PD   (SI), Y4
	VSUBPD      Y8, Y4, Y4
	VFMADD231PD Y4, Y4, Y0
	ADDQ        $16, SI
	SUBQ        $4, CX
	JMP         sq4

sqdone:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	HSUM_Y0
	VZEROUPPER
	MOVSD  X0, ret+32(FP)
	RET

// func LayerNorm(y, x, gamma, beta []float32, mean, rstd float64)
// y = float32((x−mean)·rstd)·gamma + beta.
TEXT ·LayerNorm(SB), NOSPLIT, $0-112
	MOVQ         y_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	MOVQ         gamma_base+48(FP), R8
	MOVQ         beta_base+72(FP), R9
	VBROADCASTSD mean+96(FP), Y14
	VBROADCASTSD rstd+104(FP), Y15
	XORQ         BX, BX

norm4:
	CMPQ       BX, CX
	JGE        normdone
	VCVTPS2PD  (SI)(BX*4), Y0
	VSUBPD     Y14, Y0, Y0
	VMULPD     Y15, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMULPS     (R8)(BX*4), X0, X0
	VADDPS     (R9)(BX*4), X0, X0
	VMOVUPS    X0, (DI)(BX*4)
	ADDQ       $4, BX
	JMP        norm4

normdone:
	VZEROUPPER
	RET

// func LayerNormGradStats(acc1, acc2 []float64, x, gy, gamma []float32, mean, rstd float64) (m1, m2 float64)
// With xh = (x−mean)·rstd and g = gy: acc1 += g·xh, acc2 += g, and returns Σ g·gamma and
// Σ g·gamma·xh.
TEXT ·LayerNormGradStats(SB), NOSPLIT, $0-152
	MOVQ         acc1_base+0(FP), R10
	MOVQ         acc2_base+24(FP), R11
	MOVQ         x_base+48(FP), SI
	MOVQ         x_len+56(FP), CX
	MOVQ         gy_base+72(FP), DX
	MOVQ         gamma_base+96(FP), R8
	VBROADCASTSD mean+120(FP), Y14
	VBROADCASTSD rstd+128(FP), Y15
	VXORPD       Y10, Y10, Y10
	VXORPD       Y11, Y11, Y11
	XORQ         BX, BX

gs4:
	CMPQ        BX, CX
	JGE         gsdone
	VCVTPS2PD   (SI)(BX*4), Y0
	VSUBPD      Y14, Y0, Y0
	VMULPD      Y15, Y0, Y0
	VCVTPS2PD   (DX)(BX*4), Y1
	VMOVUPD     (R10)(BX*8), Y2
	VFMADD231PD Y1, Y0, Y2
	VMOVUPD     Y2, (R10)(BX*8)
	VADDPD      (R11)(BX*8), Y1, Y3
	VMOVUPD     Y3, (R11)(BX*8)
	VCVTPS2PD   (R8)(BX*4), Y4
	VMULPD      Y4, Y1, Y1
	VADDPD      Y1, Y10, Y10
	VFMADD231PD Y1, Y0, Y11
	ADDQ        $4, BX
	JMP         gs4

gsdone:
	VMOVAPD Y10, Y0
	HSUM_Y0
	MOVSD   X0, m1+136(FP)
	VMOVAPD Y11, Y0
	HSUM_Y0
	MOVSD   X0, m2+144(FP)
	VZEROUPPER
	RET

// func LayerNormGradX(dx, x, gy, gamma []float32, mean, rstd, m1, m2 float64)
// dx = float32(rstd·(gy·gamma − m1 − xh·m2)), xh = (x−mean)·rstd.
TEXT ·LayerNormGradX(SB), NOSPLIT, $0-128
	MOVQ         dx_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	MOVQ         gy_base+48(FP), DX
	MOVQ         gamma_base+72(FP), R8
	VBROADCASTSD mean+96(FP), Y12
	VBROADCASTSD rstd+104(FP), Y13
	VBROADCASTSD m1+112(FP), Y14
	VBROADCASTSD m2+120(FP), Y15
	XORQ         BX, BX

gx4:
	CMPQ         BX, CX
	JGE          gxdone
	VCVTPS2PD    (SI)(BX*4), Y0
	VSUBPD       Y12, Y0, Y0
	VMULPD       Y13, Y0, Y0
	VCVTPS2PD    (DX)(BX*4), Y1
	VCVTPS2PD    (R8)(BX*4), Y2
	VMULPD       Y2, Y1, Y1
	VSUBPD       Y14, Y1, Y1
	VFNMADD231PD Y15, Y0, Y1
	VMULPD       Y13, Y1, Y1
	VCVTPD2PSY   Y1, X1
	VMOVUPS      X1, (DI)(BX*4)
	ADDQ         $4, BX
	JMP          gx4

gxdone:
	VZEROUPPER
	RET
