/* layers.c: the style network's layer table (model.h sf_net), from
 * ../shared/docs/network.md.  Its own file because both the stylefs
 * binary and the CUDA engine module (stylefs-cuda.so), which links nothing
 * of the binary, need it. */
#include "model.h"

/* kind, kernel, stride, cin, cout, relu, residual */
const struct sf_layer_spec sf_net[SF_LAYERS] = {
    { SF_CONV,   9, 1,   3,  32, 1, 0 },
    { SF_CONV,   3, 2,  32,  64, 1, 0 },
    { SF_CONV,   3, 2,  64, 128, 1, 0 },
    { SF_CONV,   3, 1, 128, 128, 1, 0 }, { SF_CONV, 3, 1, 128, 128, 0, 1 },
    { SF_CONV,   3, 1, 128, 128, 1, 0 }, { SF_CONV, 3, 1, 128, 128, 0, 1 },
    { SF_CONV,   3, 1, 128, 128, 1, 0 }, { SF_CONV, 3, 1, 128, 128, 0, 1 },
    { SF_CONV,   3, 1, 128, 128, 1, 0 }, { SF_CONV, 3, 1, 128, 128, 0, 1 },
    { SF_CONV,   3, 1, 128, 128, 1, 0 }, { SF_CONV, 3, 1, 128, 128, 0, 1 },
    { SF_DECONV, 3, 2, 128,  64, 1, 0 },
    { SF_DECONV, 3, 2,  64,  32, 1, 0 },
    { SF_CONV,   9, 1,  32,   3, 0, 0 },
};
