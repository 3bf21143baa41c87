/* tflite.h: a small, bounded reader of TensorFlow Lite model files (the
 * subset that Magenta's arbitrary-style networks use; see
 * ../shared/docs/arbitrary.md, section 1).
 *
 * A .tflite file is a FlatBuffer, little-endian:
 *   off 0  u32  offset of the root table (Model)
 *   off 4  4    file identifier "TFL3"
 * A table at p starts with an i32: its vtable is at p - that value.  A
 * vtable is u16 vtable size, u16 table size, then one u16 per field (the
 * field's offset in the table, 0 = absent).  Reference fields hold a u32
 * offset relative to the field's own position; a vector is a u32 count then
 * its elements (a vector of tables holds u32 relative offsets); a string is
 * a vector of bytes.  A union takes two field slots: a u8 type, then the
 * table.
 *
 * The reader checks every offset, count and size against the file before
 * it reads: a damaged or hostile file gives -EINVAL and a message saying
 * what is wrong, never a read outside the buffer (tests/fuzz_tflite.c).
 * It copies what it keeps (shapes, quantization, options, names), and
 * points into the caller's buffer only for constant tensor data, so that
 * buffer must outlive the model.
 *
 * Returns 0 or -errno. */
#ifndef SF_TFLITE_H
#define SF_TFLITE_H

#include <stddef.h>
#include <stdint.h>

enum sf_tfl_type { SF_TFL_F32 = 0, SF_TFL_F16 = 1, SF_TFL_I32 = 2, SF_TFL_U8 = 3, SF_TFL_I64 = 4, SF_TFL_I8 = 9 };

/* builtin operator codes (schema.fbs BuiltinOperator) */
enum {
    SF_TFL_ADD = 0, SF_TFL_CONV_2D = 3, SF_TFL_DEPTHWISE_CONV_2D = 4, SF_TFL_DEQUANTIZE = 6,
    SF_TFL_LOGISTIC = 14, SF_TFL_MUL = 18, SF_TFL_MEAN = 40, SF_TFL_SUB = 41, SF_TFL_RSQRT = 76,
    SF_TFL_RESIZE_NEAREST = 97, SF_TFL_SQUARED_DIFFERENCE = 99, SF_TFL_MIRROR_PAD = 100, SF_TFL_QUANTIZE = 114,
};

#define SF_TFL_MAX_DIMS 4
#define SF_TFL_MAX_IO 4

struct sf_tfl_tensor {
    int type;                       /* enum sf_tfl_type */
    int ndim;                       /* 0 for a scalar */
    int32_t shape[SF_TFL_MAX_DIMS];
    const uint8_t *data;            /* constant data in the file, or NULL: an activation */
    size_t bytes;                   /* its length, = elements * element size */
    int nq;                         /* quantization: 0, 1 (per tensor) or per channel */
    float *scale;                   /* nq scales */
    int32_t *zero;                  /* nq zero points */
    int qdim;                       /* quantized_dimension */
    char *name;
    void *owned;                    /* data this reader made (sf_tfl_to_float), freed with the model */
};

struct sf_tfl_op {
    int code;                       /* builtin code */
    int nin, nout;
    int32_t in[SF_TFL_MAX_IO], out[SF_TFL_MAX_IO];     /* tensor indices, -1 = none */
    /* options, with the schema's defaults when absent */
    int padding;                    /* 0 SAME, 1 VALID */
    int stride_w, stride_h;
    int act;                        /* 0 none, 1 RELU, 3 RELU6 */
    int depth_mult;
    int keep_dims;
    int align_corners, half_pixel;
    int mirror_mode;                /* 0 REFLECT, 1 SYMMETRIC */
};

struct sf_tfl_model {
    int ntensors, nops;
    struct sf_tfl_tensor *t;
    struct sf_tfl_op *ops;          /* in execution order */
    int nin, nout;
    int32_t in[SF_TFL_MAX_IO], out[SF_TFL_MAX_IO];
};

/* Parse buf (len bytes, the whole file; it must outlive the model).
 * Returns 0, -EINVAL (not a TFLite file, damaged, or beyond what this
 * reader supports: why says what and where), -ENOMEM. */
int sf_tfl_parse(const uint8_t *buf, size_t len, struct sf_tfl_model **out, char *why, size_t whylen);
void sf_tfl_free(struct sf_tfl_model *m);

/* A float32 copy of a full-integer model, for measuring what its integer
 * arithmetic does: int8 constants dequantized (per channel), the int32
 * biases of int8 convolutions turned into float (scale s_in * s_w[c]),
 * int8 activations made float32, and every QUANTIZE and DEQUANTIZE dropped
 * (readers read its input instead).  The copy points into m's buffer too.
 * Returns 0, -EINVAL (something it cannot translate: why says), -ENOMEM. */
int sf_tfl_to_float(const struct sf_tfl_model *m, struct sf_tfl_model **out, char *why, size_t whylen);

/* Elements of a tensor (1 for a scalar); element size of a type (0 if
 * unknown). */
size_t sf_tfl_elems(const struct sf_tfl_tensor *t);
size_t sf_tfl_type_size(int type);

#endif
