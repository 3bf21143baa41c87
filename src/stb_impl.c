/* stb_impl.c: the one translation unit that compiles the stb_image,
 * stb_image_write and stb_image_resize implementations from Debian's libstb
 * headers, with the options stylefs wants (no JPEG, no HDR, no file I/O,
 * no stdio).
 *
 * stylefs writes PNG with its own writer (image.c, libdeflate); stb's PNG
 * writer is left to tests/helper/mkimg.c, with zlib at level SF_PNG_ZLIB_LEVEL (3)
 * behind it instead of stb's own, much slower, deflate. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SF_PNG_ZLIB_LEVEL 3

/* stb's hook: compress data[0..len) into a malloc'd zlib stream. */
static unsigned char *sf_zlib_compress(unsigned char *data, int len, int *out_len, int quality)
{
    uLongf n = compressBound((uLong)len);
    unsigned char *out = malloc(n);

    (void)quality;
    if (!out || compress2(out, &n, data, (uLong)len, SF_PNG_ZLIB_LEVEL) != Z_OK) {
        free(out);
        return NULL;
    }
    *out_len = (int)n;
    return out;
}
#define STBIW_ZLIB_COMPRESS sf_zlib_compress

#define STB_IMAGE_IMPLEMENTATION
/* JPEG is libjpeg-turbo's alone: stb 2.27's JPEG reader, reached through
 * stbi_info on bytes that only look like JPEG (FF fill before the SOI),
 * writes past a Huffman table (found by make fuzz). */
#define STBI_NO_JPEG
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PIC
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
