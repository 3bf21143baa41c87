/* codecs.h: the formats image.c reads and writes through Debian's
 * libraries (codecs.c): WebP, TIFF, HEIC and AVIF.  Only image.c includes
 * this; everyone else sees image.h.
 *
 * Probes read the size from the header alone (as shown, after any
 * rotation).  Decoders fill an sf_image (8-bit RGB, alpha aside when the
 * file has one; its metadata in img->meta, as stored; on
 * failure it holds nothing).  Encoders take packed 8-bit pixels of comp (3: RGB, 4:
 * RGBA) channels and return a malloc'd file.  All return 0 or -errno:
 * -EINVAL (not this format, damaged or truncated; why says), -ENOMEM,
 * -EIO (an encoder failed). */
#ifndef SF_CODECS_H
#define SF_CODECS_H

#include <stddef.h>
#include <stdint.h>

#include "pixels.h"

int sf_webp_probe(const uint8_t *d, size_t n, int *w, int *h);
int sf_webp_decode(const uint8_t *d, size_t n, struct sf_image *img, char *why, size_t whylen);
/* Lossy at quality (1..100), with meta's EXIF, XMP and ICC chunks. */
int sf_webp_encode(const uint8_t *px, int comp, int w, int h, int quality, const struct sf_meta *meta,
                   uint8_t **out, size_t *outlen, char *why, size_t whylen);

int sf_tiff_probe(const uint8_t *d, size_t n, int *w, int *h);
/* The rows as stored, 8 bits a sample (16-bit files scaled), and the
 * file's orientation tag (1..8, as EXIF's) for the caller to apply; its
 * ICC profile and XMP in img->meta (not its EXIF: a TIFF's EXIF is a
 * sub-IFD of the file, not a block to carry). */
int sf_tiff_decode(const uint8_t *d, size_t n, struct sf_image *img, int *orientation, char *why,
                   size_t whylen);
/* Deflate-compressed, with the horizontal predictor, and meta's ICC
 * profile and XMP (its EXIF is left out). */
int sf_tiff_encode(const uint8_t *px, int comp, int w, int h, const struct sf_meta *meta, uint8_t **out,
                   size_t *outlen, char *why, size_t whylen);

/* SF_FMT_HEIC, SF_FMT_AVIF, or SF_FMT_UNKNOWN, from the ftyp box. */
enum sf_format sf_heif_sniff(const uint8_t *d, size_t n);
int sf_heif_probe(const uint8_t *d, size_t n, int *w, int *h, char *why, size_t whylen);
/* The primary image, its rotation and mirroring applied, with its EXIF,
 * XMP and ICC profile in img->meta. */
int sf_heif_decode(const uint8_t *d, size_t n, struct sf_image *img, char *why, size_t whylen);
/* HEIC (x265) or, with avif, AVIF (aom), lossy at quality (1..100), with
 * meta's EXIF, XMP and ICC profile. */
int sf_heif_encode(const uint8_t *px, int comp, int w, int h, int avif, int quality, const struct sf_meta *meta,
                   uint8_t **out, size_t *outlen, char *why, size_t whylen);

#endif
