/* meta.c: a photo's metadata kept on its styled copy (see meta.h).
 *
 * The EXIF block is TIFF-structured (CIPA DC-008, TIFF 6.0):
 *    0  2  byte order: "II" little-endian, "MM" big-endian
 *    2  2  42
 *    4  4  offset of IFD0 (from the start of the block)
 * an IFD:
 *    0  2  entry count N
 *    2  12N entries: tag u16, type u16, count u32, value or offset u32
 *           (a value of 4 bytes or less sits in the field, left-aligned)
 * 2+12N 4  offset of the next IFD (IFD0's next is IFD1, the thumbnail), 0
 * Orientation is tag 0x0112 (SHORT, count 1) in IFD0.  IFD1's thumbnail
 * is JPEGInterchangeFormat 0x0201 (offset) and ...Length 0x0202, or
 * StripOffsets 0x0111 and StripByteCounts 0x0117 (one strip).
 *
 * JPEG segments (ITU T.81): FF, a marker, then for all but SOI, EOI,
 * RSTn and TEM a big-endian u16 length that counts itself.  EXIF is APP1
 * (FFE1) after "Exif\0\0"; XMP is APP1 after
 * "http://ns.adobe.com/xap/1.0/\0"; the ICC profile is APP2 (FFE2) after
 * "ICC_PROFILE\0", a sequence number and a count (1-based), split in
 * chunks of up to 65519 bytes. */
#include "meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char k_exif[6] = "Exif\0";      /* "Exif\0\0" */
static const char k_xmp[] = "http://ns.adobe.com/xap/1.0/";  /* and its NUL: 29 bytes */
static const char k_icc[12] = "ICC_PROFILE";  /* and its NUL */
#define ICC_CHUNK 65519

void sf_meta_free(struct sf_meta *m)
{
    free(m->exif);
    free(m->xmp);
    free(m->icc);
    memset(m, 0, sizeof *m);
}

static int dup_block(uint8_t **dst, size_t *dlen, const uint8_t *src, size_t len)
{
    *dst = NULL;
    *dlen = 0;
    if (!src || !len)
        return 0;
    if (!(*dst = malloc(len)))
        return -ENOMEM;
    memcpy(*dst, src, len);
    *dlen = len;
    return 0;
}

int sf_meta_copy(struct sf_meta *dst, const struct sf_meta *src)
{
    memset(dst, 0, sizeof *dst);
    if (dup_block(&dst->exif, &dst->exif_len, src->exif, src->exif_len) ||
        dup_block(&dst->xmp, &dst->xmp_len, src->xmp, src->xmp_len) ||
        dup_block(&dst->icc, &dst->icc_len, src->icc, src->icc_len)) {
        sf_meta_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* ---- EXIF ------------------------------------------------------------------- */

static uint32_t rd16(const uint8_t *p, int le)
{
    return le ? (uint32_t)(p[0] | p[1] << 8) : (uint32_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void wr16(uint8_t *p, uint32_t v, int le)
{
    p[le ? 0 : 1] = (uint8_t)v;
    p[le ? 1 : 0] = (uint8_t)(v >> 8);
}

/* Whether an IFD of n entries at off lies whole in len bytes. */
static int ifd_fits(size_t off, size_t len, uint32_t *n, const uint8_t *e, int le)
{
    if (off < 8 || off > len - 2)
        return 0;
    *n = rd16(e + off, le);
    return off + 2 + 12 * (size_t)*n + 4 <= len;
}

/* The value of IFD entry tag (SHORT or LONG, count 1) in the IFD at off
 * with n entries: 1 and *v, or 0. */
static int ifd_value(const uint8_t *e, size_t off, uint32_t n, unsigned tag, int le, uint32_t *v)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *ent = e + off + 2 + 12 * (size_t)i;
        uint32_t type = rd16(ent + 2, le);
        if (rd16(ent, le) != tag || rd32(ent + 4, le) != 1 || (type != 3 && type != 4))
            continue;
        *v = type == 3 ? rd16(ent + 8, le) : rd32(ent + 8, le);
        return 1;
    }
    return 0;
}

/* Zero [off, off + n) when it lies within len. */
static void zero_range(uint8_t *e, size_t len, uint32_t off, uint32_t n)
{
    if (off >= 8 && off <= len && n <= len - off)
        memset(e + off, 0, n);
}

int sf_exif_for_copy(uint8_t *e, size_t len)
{
    uint32_t off0, off1, n0, n1, v, tl;
    uint8_t *next;
    int le;

    if (len < 8 || !((e[0] == 'I' && e[1] == 'I') || (e[0] == 'M' && e[1] == 'M')))
        return -EINVAL;
    le = e[0] == 'I';
    if (rd16(e + 2, le) != 42 || !ifd_fits(off0 = rd32(e + 4, le), len, &n0, e, le))
        return -EINVAL;
    for (uint32_t i = 0; i < n0; i++) {     /* Orientation: 1, top-left */
        uint8_t *ent = e + off0 + 2 + 12 * (size_t)i;
        if (rd16(ent, le) == 0x0112 && rd16(ent + 2, le) == 3 && rd32(ent + 4, le) == 1) {
            memset(ent + 8, 0, 4);
            wr16(ent + 8, 1, le);
        }
    }
    next = e + off0 + 2 + 12 * (size_t)n0;
    off1 = rd32(next, le);
    memset(next, 0, 4);                     /* IFD1, the thumbnail, unlinked */
    if (off1 && ifd_fits(off1, len, &n1, e, le)) {
        if (ifd_value(e, off1, n1, 0x0201, le, &v) && ifd_value(e, off1, n1, 0x0202, le, &tl))
            zero_range(e, len, v, tl);
        if (ifd_value(e, off1, n1, 0x0111, le, &v) && ifd_value(e, off1, n1, 0x0117, le, &tl))
            zero_range(e, len, v, tl);
        memset(e + off1, 0, 2 + 12 * (size_t)n1 + 4);
    }
    return 0;
}

/* ---- JPEG ---------------------------------------------------------------------- */

/* The next segment at i: its marker, where its payload starts and its
 * length (0 for a marker without one).  0 past the end or on damage. */
static int jpeg_next(const uint8_t *d, size_t n, size_t i, unsigned *marker, size_t *start, size_t *plen)
{
    size_t len;

    while (i < n && d[i] == 0xFF && i + 1 < n && d[i + 1] == 0xFF)
        i++;                                /* fill bytes */
    if (i + 2 > n || d[i] != 0xFF)
        return 0;
    *marker = d[i + 1];
    if (*marker == 0xD8 || *marker == 0xD9 || *marker == 0x01 || (*marker >= 0xD0 && *marker <= 0xD7)) {
        *start = i + 2;
        *plen = 0;
        return 1;
    }
    if (i + 4 > n || (len = (size_t)(d[i + 2] << 8 | d[i + 3])) < 2 || i + 2 + len > n)
        return 0;
    *start = i + 4;
    *plen = len - 2;
    return 1;
}

int sf_meta_from_jpeg(const uint8_t *d, size_t n, struct sf_meta *m)
{
    const uint8_t *icc_part[256] = { 0 };
    size_t icc_size[256] = { 0 }, i = 2, s, l;
    unsigned marker, icc_count = 0;
    int rc = 0;

    memset(m, 0, sizeof *m);
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return 0;
    while (!rc && jpeg_next(d, n, i, &marker, &s, &l) && marker != 0xDA && marker != 0xD9) {
        const uint8_t *p = d + s;
        if (marker == 0xE1 && l > 14 && !memcmp(p, k_exif, 6) && !m->exif)
            rc = dup_block(&m->exif, &m->exif_len, p + 6, l - 6);
        else if (marker == 0xE1 && l > sizeof k_xmp && !memcmp(p, k_xmp, sizeof k_xmp) && !m->xmp)
            rc = dup_block(&m->xmp, &m->xmp_len, p + sizeof k_xmp, l - sizeof k_xmp);
        else if (marker == 0xE2 && l > 14 && !memcmp(p, k_icc, 12) && p[12] >= 1 && p[13] >= p[12]) {
            icc_count = p[13];
            icc_part[p[12]] = p + 14;
            icc_size[p[12]] = l - 14;
        }
        i = s + l;
    }
    if (!rc && icc_count) {                 /* every chunk, or no profile */
        size_t total = 0, at = 0;
        unsigned k;
        for (k = 1; k <= icc_count && icc_part[k]; k++)
            total += icc_size[k];
        if (k > icc_count && (m->icc = malloc(total))) {
            for (k = 1; k <= icc_count; k++) {
                memcpy(m->icc + at, icc_part[k], icc_size[k]);
                at += icc_size[k];
            }
            m->icc_len = total;
        } else if (k > icc_count) {
            rc = -ENOMEM;
        }
    }
    if (rc)
        sf_meta_free(m);
    return rc;
}

/* Append a segment (marker, header bytes, payload) at *o. */
static uint8_t *put_segment(uint8_t *o, unsigned marker, const void *hdr, size_t hlen, const uint8_t *p, size_t plen)
{
    size_t len = 2 + hlen + plen;

    *o++ = 0xFF;
    *o++ = (uint8_t)marker;
    *o++ = (uint8_t)(len >> 8);
    *o++ = (uint8_t)len;
    memcpy(o, hdr, hlen);
    memcpy(o + hlen, p, plen);
    return o + hlen + plen;
}

int sf_meta_into_jpeg(uint8_t **jpeg, size_t *len, const struct sf_meta *m)
{
    const uint8_t *d = *jpeg;
    size_t n = *len, after = 2, s, l, extra = 0, chunks;
    int exif = m->exif_len && m->exif_len <= 65533 - 6, xmp = m->xmp_len && m->xmp_len <= 65533 - sizeof k_xmp;
    unsigned marker;
    uint8_t *out, *o;

    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return -EINVAL;
    chunks = (m->icc_len + ICC_CHUNK - 1) / ICC_CHUNK;
    if (chunks > 255)
        chunks = 0;                         /* a profile over 16 MB: left out */
    if (!exif && !xmp && !chunks)
        return 0;
    if (jpeg_next(d, n, 2, &marker, &s, &l) && marker == 0xE0)
        after = s + l;                      /* after JFIF's APP0 */
    extra = (exif ? 4 + 6 + m->exif_len : 0) + (xmp ? 4 + sizeof k_xmp + m->xmp_len : 0) +
            chunks * (4 + 14) + (chunks ? m->icc_len : 0);
    if (!(out = malloc(n + extra)))
        return -ENOMEM;
    memcpy(out, d, after);
    o = out + after;
    if (exif)
        o = put_segment(o, 0xE1, k_exif, 6, m->exif, m->exif_len);
    if (xmp)
        o = put_segment(o, 0xE1, k_xmp, sizeof k_xmp, m->xmp, m->xmp_len);
    for (size_t c = 0; c < chunks; c++) {
        uint8_t hdr[14];
        size_t part = m->icc_len - c * ICC_CHUNK < ICC_CHUNK ? m->icc_len - c * ICC_CHUNK : ICC_CHUNK;
        memcpy(hdr, k_icc, 12);
        hdr[12] = (uint8_t)(c + 1);
        hdr[13] = (uint8_t)chunks;
        o = put_segment(o, 0xE2, hdr, 14, m->icc + c * ICC_CHUNK, part);
    }
    memcpy(o, d + after, n - after);
    free(*jpeg);
    *jpeg = out;
    *len = (size_t)(o - out) + (n - after);
    return 0;
}
