/* cli_stylize.c: `stylefs stylize` (one image) and `stylefs styles` (list). */
#include "cli.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char stylize_help[] =
    "usage: stylefs stylize [options] STYLE INPUT OUTPUT\n"
    "Stylize one image.  INPUT may be - for standard input; OUTPUT may be -\n"
    "for standard output (then --format is needed).  The output format\n"
    "follows OUTPUT's extension: .jpg/.jpeg, .png, .bmp or .tga.\n"
    "  --styles DIR      folder of styles (default: see 'man stylefs')\n"
    "  --style-image F   a painting as the style (then no STYLE argument)\n"
    "  --strength P      with --style-image: percent of the painting's style (100)\n"
    "  --arbitrary DIR   the arbitrary-style networks (default STYLES/arbitrary)\n"
    "  --cache DIR       cache folder (default $XDG_CACHE_HOME/stylefs)\n"
    "  --no-cache        neither read nor write the cache\n"
    "  --quality N       JPEG quality 1..100 (default 90)\n"
    "  --max-side N      downscale so the longer side is at most N (default 1024, 0 = off)\n"
    "  --max-pixels N    refuse sources over N pixels (default 50000000)\n"
    "  --format FMT      output format: jpg, png, bmp or tga (overrides the extension)\n"
    "  --device DEV      auto, cpu or cuda (default auto)\n"
    "  -v, --verbose     say which engine ran, hit or miss, and the time taken\n"
    "  -h, --help        this help\n";

int cmd_stylize(int argc, char **argv)
{
    enum { O_STYLES = 256, O_CACHE, O_NOCACHE, O_QUALITY, O_MAXSIDE, O_MAXPIX, O_FORMAT, O_DEVICE, O_STYLEIMG,
           O_STRENGTH, O_ARB };
    static const struct option opts[] = {
        { "styles", required_argument, 0, O_STYLES },   { "cache", required_argument, 0, O_CACHE },
        { "no-cache", no_argument, 0, O_NOCACHE },      { "quality", required_argument, 0, O_QUALITY },
        { "max-side", required_argument, 0, O_MAXSIDE }, { "max-pixels", required_argument, 0, O_MAXPIX },
        { "format", required_argument, 0, O_FORMAT },   { "device", required_argument, 0, O_DEVICE },
        { "style-image", required_argument, 0, O_STYLEIMG }, { "strength", required_argument, 0, O_STRENGTH },
        { "arbitrary", required_argument, 0, O_ARB },
        { "verbose", no_argument, 0, 'v' },             { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *styles_opt = NULL, *cache_opt = NULL, *format_opt = NULL, *style_image = NULL, *arb_dir = NULL;
    uint64_t strength = 100;
    char styles_dir[PATH_MAX], cache_dir[PATH_MAX], why[512] = "";
    struct sf_settings set;
    enum sf_device dev = SF_DEVICE_AUTO;
    enum sf_format fmt;
    struct sf_model *model = NULL;
    struct sf_cache *cache = NULL;
    struct sf_pipeline pipe;
    uint8_t *src = NULL, *out = NULL;
    size_t srclen, outlen;
    uint64_t v;
    int c, no_cache = 0, verbose = 0, how = 0, rc, status = SF_EXIT_FAIL;
    const char *style, *in, *outp;
    double t0;

    sf_settings_default(&set);
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case O_STYLES: styles_opt = optarg; break;
        case O_CACHE: cache_opt = optarg; break;
        case O_NOCACHE: no_cache = 1; break;
        case O_QUALITY:
            if (sf_cli_parse_num("stylize", "--quality", optarg, 1, 100, &v)) return SF_EXIT_USAGE;
            set.quality = (int)v;
            break;
        case O_MAXSIDE:
            if (sf_cli_parse_num("stylize", "--max-side", optarg, 0, 65535, &v)) return SF_EXIT_USAGE;
            set.max_side = (int)v;
            break;
        case O_MAXPIX:
            if (sf_cli_parse_num("stylize", "--max-pixels", optarg, 1, 1ULL << 40, &v)) return SF_EXIT_USAGE;
            set.max_pixels = v;
            break;
        case O_FORMAT: format_opt = optarg; break;
        case O_DEVICE:
            if (sf_device_parse(optarg, &dev))
                return sf_cli_usage("stylize", "--device must be auto, cpu or cuda, not", optarg);
            break;
        case O_STYLEIMG: style_image = optarg; break;
        case O_STRENGTH:
            if (sf_cli_parse_num("stylize", "--strength", optarg, 0, 100, &strength)) return SF_EXIT_USAGE;
            break;
        case O_ARB: arb_dir = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': fputs(stylize_help, stdout); return SF_EXIT_OK;
        default: return sf_cli_usage("stylize", "bad option", NULL);
        }
    }
    if (argc - optind != (style_image ? 2 : 3))
        return sf_cli_usage("stylize", style_image ? "expected INPUT OUTPUT after --style-image" :
                                                     "expected STYLE INPUT OUTPUT", NULL);
    if (!style_image && strength != 100)
        return sf_cli_usage("stylize", "--strength goes with --style-image (or name NAME@P)", NULL);
    style = style_image ? style_image : argv[optind];
    in = argv[optind + !style_image];
    outp = argv[optind + 1 + !style_image];
    if (verbose)
        sf_log_set_level(SF_LOG_INFO);

    if (format_opt) {
        char name[32];
        snprintf(name, sizeof name, "x.%s", format_opt);
        fmt = sf_format_for_output(name);
        if (fmt == SF_FMT_UNKNOWN)
            return sf_cli_usage("stylize", "--format must be jpg, png, bmp or tga, not", format_opt);
    } else if (!strcmp(outp, "-")) {
        return sf_cli_usage("stylize", "writing to standard output needs --format", NULL);
    } else if ((fmt = sf_format_for_output(outp)) == SF_FMT_UNKNOWN) {
        char ext[16];
        fprintf(stderr, "stylefs: stylize: %s: cannot write '.%s' files; use .jpg, .png, .bmp or .tga\n",
                outp, sf_path_ext(outp, ext, sizeof ext));
        return SF_EXIT_USAGE;
    }

    if (sf_styles_dir(styles_opt, styles_dir, sizeof styles_dir, why, sizeof why)) {
        if (!style_image) {
            fprintf(stderr, "stylefs: stylize: %s\n", why);
            return SF_EXIT_FAIL;
        }
        snprintf(styles_dir, sizeof styles_dir, ".");  /* a painting needs only the networks */
    }
    if (style_image) {
        char name[SF_STYLE_NAME_MAX];
        const char *base = strrchr(style_image, '/'), *dot;
        base = base ? base + 1 : style_image;
        dot = strrchr(base, '.');
        size_t stem = dot && dot > base ? (size_t)(dot - base) : strlen(base);
        snprintf(name, sizeof name, "%.*s@%d", (int)(stem < 100 ? stem : 100), base, (int)strength);
        rc = sf_model_load_image(style_image, name, styles_dir, arb_dir, &model, why, sizeof why);
        if (rc) {
            fprintf(stderr, "stylefs: stylize: --style-image %s\n", why);
            return SF_EXIT_FAIL;
        }
    } else {
        rc = sf_model_load(styles_dir, arb_dir, style, &model, why, sizeof why);
    }
    if (rc) {
        if (rc == -ENOENT)
            fprintf(stderr, "stylefs: stylize: unknown style '%s' in %s (see 'stylefs styles')\n",
                    style, styles_dir);
        else
            fprintf(stderr, "stylefs: stylize: style %s is damaged: %s\n", style, why);
        return SF_EXIT_FAIL;
    }
    rc = !strcmp(in, "-") ? sf_read_fd(STDIN_FILENO, SF_MAX_SOURCE_BYTES, &src, &srclen)
                          : sf_read_file(in, SF_MAX_SOURCE_BYTES, &src, &srclen);
    if (rc == -EINVAL && !strcmp(in, "-")) {
        /* a pipe: read it plainly */
        size_t cap = 1 << 20;
        ssize_t r;
        srclen = 0;
        src = malloc(cap);
        rc = src ? 0 : -ENOMEM;
        while (!rc && (r = read(STDIN_FILENO, src + srclen, cap - srclen)) != 0) {
            uint8_t *ns;
            if (r < 0) { if (errno != EINTR) rc = -errno; continue; }
            srclen += (size_t)r;
            if (srclen == cap) {
                if (cap >= SF_MAX_SOURCE_BYTES) { rc = -EFBIG; break; }
                if (!(ns = realloc(src, cap *= 2))) { rc = -ENOMEM; break; }
                src = ns;
            }
        }
    }
    if (rc) {
        fprintf(stderr, "stylefs: stylize: %s: %s\n", in, strerror(-rc));
        goto out_model;
    }
    if (!no_cache) {
        if (sf_cli_cache_dir(cache_opt, cache_dir, sizeof cache_dir)) {
            fprintf(stderr, "stylefs: stylize: no cache folder: set --cache, XDG_CACHE_HOME or HOME\n");
            goto out_src;
        }
        if ((rc = sf_cache_open(cache_dir, NULL, &cache, why, sizeof why)))
            sf_warn("stylize: %s; going on without the cache", why);
    }
    sf_pipeline_init(&pipe, dev, &set, cache);
    t0 = sf_monotonic();
    {
        struct sf_produce_req r = { .model = model, .fmt = fmt, .src = src, .len = srclen, .what = "output" };
        rc = sf_produce(&pipe, &r, &out, &outlen, &how, why, sizeof why);
    }
    if (rc) {
        fprintf(stderr, "stylefs: stylize: %s: %s\n", in, why[0] ? why : strerror(-rc));
        goto out_pipe;
    }
    sf_info("%s: %s, %.3f s", in, how == SF_PRODUCED_HIT ? "cache hit" : cache ? "computed and cached" : "computed",
            sf_monotonic() - t0);
    if (!strcmp(outp, "-")) {
        size_t off = 0;
        while (off < outlen) {
            ssize_t w = write(STDOUT_FILENO, out + off, outlen - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                fprintf(stderr, "stylefs: stylize: writing standard output: %s\n", strerror(errno));
                goto out_out;
            }
            off += (size_t)w;
        }
    } else if ((rc = sf_write_file_atomic(outp, out, outlen))) {
        fprintf(stderr, "stylefs: stylize: %s: %s\n", outp, strerror(-rc));
        goto out_out;
    }
    status = SF_EXIT_OK;
out_out:
    free(out);
out_pipe:
    sf_pipeline_close(&pipe);
    sf_cache_close(cache);
out_src:
    free(src);
out_model:
    sf_model_free(model);
    return status;
}

static const char styles_help[] =
    "usage: stylefs styles [--styles DIR]\n"
    "List the styles that load, one per line: its name, a tab, and its kind\n"
    "(\"network\", a pretrained folder; or \"painting FILE\", an image run\n"
    "through the arbitrary-style networks).  Damaged styles and name clashes\n"
    "are reported on stderr, naming the files.\n";

int cmd_styles(int argc, char **argv)
{
    static const struct option opts[] = {
        { "styles", required_argument, 0, 's' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *styles_opt = NULL;
    char dir[PATH_MAX], why[512];
    struct sf_model **models;
    size_t n;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's')
            styles_opt = optarg;
        else if (c == 'h')
            return fputs(styles_help, stdout), SF_EXIT_OK;
        else
            return sf_cli_usage("styles", "bad option", NULL);
    }
    if (optind != argc)
        return sf_cli_usage("styles", "unexpected argument", argv[optind]);
    if (sf_styles_dir(styles_opt, dir, sizeof dir, why, sizeof why)) {
        fprintf(stderr, "stylefs: styles: %s\n", why);
        return SF_EXIT_FAIL;
    }
    if (sf_models_load(dir, NULL, NULL, 0, "styles: ", &models, &n))
        return SF_EXIT_FAIL;
    for (size_t i = 0; i < n; i++) {
        if (models[i]->kind == SF_STYLE_IMAGE)
            printf("%s\tpainting %s\n", models[i]->name, sf_style_path(models[i]));
        else
            printf("%s\tnetwork\n", models[i]->name);
    }
    sf_models_free(models, n);
    return SF_EXIT_OK;
}
