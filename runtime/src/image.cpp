//===- image.cpp - PNG, JPEG and WebP decoding as Pillow does -------------===//
//
// Each decoder reproduces what `PIL.Image.open(...)` yields (mode and pixel
// values), followed by transformers' `convert_to_rgb` (image_transforms.py):
// an image with an alpha band or a transparency key is converted to RGBA
// and alpha-composited onto opaque white with Pillow's integer formula;
// any other image is `.convert("RGB")`. Pillow's decoders are its own for
// PNG (zlib plus its unpackers), libjpeg-turbo (ISLOW IDCT, fancy
// upsampling: libjpeg's defaults, which Pillow keeps outside draft mode)
// and libwebp's WebPAnimDecoder (MODE_RGBA) for WebP; we use libpng,
// libjpeg-turbo and libwebp with the same settings and redo Pillow's
// unpacking and mode conversions.
//
// libpng and libjpeg report errors by longjmp: the state those functions
// touch lives in a heap object owned by the caller, so no C++ object with a
// destructor is skipped or left stale by the jump.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/image.h"
#include "qwen_rt/error.h"

#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>

namespace qwen::rt {

ImageFormat sniffImageFormat(const uint8_t *data, size_t size) {
  static const uint8_t Png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, Png, 8) == 0)
    return ImageFormat::Png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return ImageFormat::Jpeg;
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

const char *imageFormatName(ImageFormat format) {
  switch (format) {
  case ImageFormat::Png:
    return "PNG";
  case ImageFormat::Jpeg:
    return "JPEG";
  case ImageFormat::Webp:
    return "WebP";
  case ImageFormat::Unknown:
    break;
  }
  return "unknown";
}

namespace {

[[noreturn]] void fail(const std::string &origin, const std::string &what) {
  throw Error("image " + origin + ": " + what);
}

void checkDimensions(const std::string &origin, const char *format, uint64_t width, uint64_t height) {
  if (width == 0 || height == 0)
    fail(origin, std::string(format) + " has zero size (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  if (width * height > uint64_t(kMaxDecodedImagePixels))
    fail(origin, std::string(format) + " is " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels, above the limit of " + std::to_string(kMaxDecodedImagePixels) +
                     " (a decompression bomb guard)");
}

// SHIFTFORDIV255 of Pillow's AlphaComposite.c: a rounded division by 255.
inline uint32_t shiftForDiv255(uint32_t a) { return ((a >> 8) + a) >> 8; }

/// Pillow's `alpha_composite(white, src)` then `.convert("RGB")` for one
/// pixel: the scalar integer formula of AlphaComposite.c with an opaque
/// white destination.
inline void compositeOnWhite(uint8_t r, uint8_t g, uint8_t b, uint8_t a, uint8_t *out) {
  if (a == 0) {
    out[0] = out[1] = out[2] = 255;
    return;
  }
  constexpr uint32_t PrecisionBits = 7;
  uint32_t blend = 255u * (255u - a);
  uint32_t outa255 = a * 255u + blend;
  uint32_t coef1 = a * 255u * 255u * (1u << PrecisionBits) / outa255;
  uint32_t coef2 = 255u * (1u << PrecisionBits) - coef1;
  const uint8_t src[3] = {r, g, b};
  for (int c = 0; c < 3; ++c) {
    uint32_t tmp = src[c] * coef1 + 255u * coef2;
    out[c] = uint8_t(shiftForDiv255(tmp + (0x80u << PrecisionBits)) >> PrecisionBits);
  }
}

/// An RGBA buffer (H, W, 4) composited onto white.
RgbImage rgbaToRgbOnWhite(int width, int height, const uint8_t *rgba) {
  RgbImage out;
  out.width = width;
  out.height = height;
  size_t n = size_t(width) * size_t(height);
  out.pixels.resize(n * 3);
  for (size_t i = 0; i < n; ++i)
    compositeOnWhite(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2], rgba[4 * i + 3], &out.pixels[3 * i]);
  return out;
}

//===----------------------------------------------------------------------===//
// PNG
//===----------------------------------------------------------------------===//

struct PngState {
  const uint8_t *data = nullptr;
  size_t size = 0;
  size_t offset = 0;
  std::string error;
  png_structp png = nullptr;
  png_infop info = nullptr;
  // What the decode produced (filled inside the setjmp region).
  uint32_t width = 0, height = 0;
  int bitDepth = 0, colorType = 0;
  size_t rowBytes = 0;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  std::vector<uint8_t> palette;  // 256 * 3, black past the PLTE entries
  std::vector<uint8_t> palAlpha; // 256
  bool hasTrns = false;
  uint16_t trnsKey[3] = {0, 0, 0};
  bool tooLarge = false;
  ~PngState() {
    if (png)
      png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void pngError(png_structp png, png_const_charp message) {
  auto *state = static_cast<PngState *>(png_get_error_ptr(png));
  state->error = message ? message : "libpng error";
  png_longjmp(png, 1);
}

void pngWarning(png_structp, png_const_charp) {}

void pngRead(png_structp png, png_bytep out, png_size_t length) {
  auto *state = static_cast<PngState *>(png_get_io_ptr(png));
  if (length > state->size - state->offset)
    png_error(png, "the file is truncated");
  std::memcpy(out, state->data + state->offset, length);
  state->offset += length;
}

// The setjmp region: only plain code and the heap state. Returns false with
// state->error set on failure.
bool pngDecodeRaw(PngState *state) {
  state->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, pngError, pngWarning);
  if (!state->png) {
    state->error = "cannot create a libpng reader";
    return false;
  }
  state->info = png_create_info_struct(state->png);
  if (!state->info) {
    state->error = "cannot create a libpng info struct";
    return false;
  }
  if (setjmp(png_jmpbuf(state->png)))
    return false;
  png_set_read_fn(state->png, state, pngRead);
  // Pillow has no width or height limit of its own (past the pixel count).
  png_set_user_limits(state->png, 0x7fffffff, 0x7fffffff);
  png_read_info(state->png, state->info);
  png_uint_32 width = 0, height = 0;
  int interlace = 0;
  png_get_IHDR(state->png, state->info, &width, &height, &state->bitDepth, &state->colorType, &interlace, nullptr,
               nullptr);
  state->width = width;
  state->height = height;
  if (width == 0 || height == 0 || uint64_t(width) * height > uint64_t(kMaxDecodedImagePixels)) {
    state->tooLarge = true;
    return false;
  }
  // Samples of 1, 2 and 4 bits one per byte, unscaled; 16-bit samples stay
  // big-endian pairs; palettes stay indices: Pillow's unpackers do the rest.
  if (state->bitDepth < 8)
    png_set_packing(state->png);
  png_set_interlace_handling(state->png);
  png_read_update_info(state->png, state->info);

  if (state->colorType == PNG_COLOR_TYPE_PALETTE) {
    // ImagingPaletteNew: black and opaque past the PLTE entries (an index
    // beyond them is black, as in Pillow).
    state->palette.assign(256 * 3, 0);
    state->palAlpha.assign(256, 255);
    png_colorp plte = nullptr;
    int count = 0;
    if (png_get_PLTE(state->png, state->info, &plte, &count) & PNG_INFO_PLTE) {
      for (int i = 0; i < count && i < 256; ++i) {
        state->palette[3 * i] = plte[i].red;
        state->palette[3 * i + 1] = plte[i].green;
        state->palette[3 * i + 2] = plte[i].blue;
      }
    }
  }
  png_bytep transAlpha = nullptr;
  int numTrans = 0;
  png_color_16p transColor = nullptr;
  if (png_get_tRNS(state->png, state->info, &transAlpha, &numTrans, &transColor) & PNG_INFO_tRNS) {
    state->hasTrns = true;
    if (state->colorType == PNG_COLOR_TYPE_PALETTE) {
      for (int i = 0; i < numTrans && i < 256; ++i)
        state->palAlpha[i] = transAlpha[i];
    } else if (transColor) {
      if (state->colorType == PNG_COLOR_TYPE_GRAY) {
        state->trnsKey[0] = state->trnsKey[1] = state->trnsKey[2] = transColor->gray;
      } else {
        state->trnsKey[0] = transColor->red;
        state->trnsKey[1] = transColor->green;
        state->trnsKey[2] = transColor->blue;
      }
    }
  }

  state->rowBytes = png_get_rowbytes(state->png, state->info);
  if (interlace == PNG_INTERLACE_NONE) {
    // Row by row, so that a file that claims a large size but holds little
    // data fails before its whole buffer is allocated.
    for (uint32_t y = 0; y < height; ++y) {
      state->pixels.resize(state->rowBytes * (size_t(y) + 1));
      png_read_row(state->png, state->pixels.data() + size_t(y) * state->rowBytes, nullptr);
    }
  } else {
    state->pixels.resize(state->rowBytes * height);
  }
  // (No local with a destructor in this function: longjmp would skip it.)
  state->rows.resize(height);
  for (uint32_t y = 0; y < height; ++y)
    state->rows[y] = state->pixels.data() + size_t(y) * state->rowBytes;
  if (interlace != PNG_INTERLACE_NONE)
    png_read_image(state->png, state->rows.data());
  // Pillow stops once it has every pixel; it does not read up to IEND.
  return true;
}

RgbImage decodePng(const uint8_t *data, size_t size, const std::string &origin) {
  // The size from IHDR (always the first chunk) before libpng reads on.
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return uint32_t(data[at]) << 24 | uint32_t(data[at + 1]) << 16 | uint32_t(data[at + 2]) << 8 | data[at + 3];
    };
    checkDimensions(origin, "PNG", be32(16), be32(20));
  }
  auto state = std::make_unique<PngState>();
  state->data = data;
  state->size = size;
  if (!pngDecodeRaw(state.get())) {
    if (state->tooLarge)
      checkDimensions(origin, "PNG", state->width, state->height);
    fail(origin, "corrupt or truncated PNG: " + state->error);
  }
  const int w = int(state->width), h = int(state->height);
  const int depth = state->bitDepth;
  const size_t n = size_t(w) * size_t(h);
  auto sample16 = [](const uint8_t *p) { return uint16_t((p[0] << 8) | p[1]); };
  RgbImage out;
  out.width = w;
  out.height = h;

  switch (state->colorType) {
  case PNG_COLOR_TYPE_PALETTE: {
    // Mode P; with a tRNS chunk, P -> RGBA with the palette alphas.
    std::vector<uint8_t> rgba(n * 4);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t index = state->rows[y][x];
        uint8_t *o = &rgba[(size_t(y) * w + x) * 4];
        std::memcpy(o, &state->palette[3 * index], 3);
        o[3] = state->palAlpha[index];
      }
    if (state->hasTrns)
      return rgbaToRgbOnWhite(w, h, rgba.data());
    out.pixels.resize(n * 3);
    for (size_t i = 0; i < n; ++i)
      std::memcpy(&out.pixels[3 * i], &rgba[4 * i], 3);
    return out;
  }
  case PNG_COLOR_TYPE_GRAY: {
    // 1 bit: mode "1" (0/255); 2 and 4 bits: "L;2"/"L;4" scaled to 8 bits;
    // 8: "L"; 16: "I;16", whose conversion to RGB clips at 255.
    std::vector<uint8_t> gray(n);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t v;
        if (depth == 16) {
          uint16_t s = sample16(&state->rows[y][2 * x]);
          v = s > 255 ? 255 : uint8_t(s);
        } else {
          v = uint8_t(state->rows[y][x] * (255 / ((1 << depth) - 1)));
        }
        gray[size_t(y) * w + x] = v;
      }
    if (state->hasTrns) {
      // convert_transparent: pixels equal to the key's low byte get alpha 0.
      uint8_t key = uint8_t(state->trnsKey[0] & 0xff);
      out.pixels.resize(n * 3);
      for (size_t i = 0; i < n; ++i) {
        uint8_t v = gray[i];
        compositeOnWhite(v, v, v, v == key ? 0 : 255, &out.pixels[3 * i]);
      }
      return out;
    }
    out.pixels.resize(n * 3);
    for (size_t i = 0; i < n; ++i)
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = gray[i];
    return out;
  }
  case PNG_COLOR_TYPE_RGB: {
    // "RGB" or "RGB;16B" (the high bytes).
    out.pixels.resize(n * 3);
    const int step = depth == 16 ? 2 : 1;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          out.pixels[(size_t(y) * w + x) * 3 + c] = state->rows[y][(3 * x + c) * step];
    if (state->hasTrns) {
      const uint8_t key[3] = {uint8_t(state->trnsKey[0] & 0xff), uint8_t(state->trnsKey[1] & 0xff),
                              uint8_t(state->trnsKey[2] & 0xff)};
      for (size_t i = 0; i < n; ++i) {
        uint8_t *p = &out.pixels[3 * i];
        if (p[0] == key[0] && p[1] == key[1] && p[2] == key[2])
          p[0] = p[1] = p[2] = 255;
      }
    }
    return out;
  }
  case PNG_COLOR_TYPE_GRAY_ALPHA:
  case PNG_COLOR_TYPE_RGB_ALPHA: {
    // "LA"/"RGBA" or their ";16B" forms (the high bytes), then onto white.
    const int bands = state->colorType == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 4;
    const int step = depth == 16 ? 2 : 1;
    std::vector<uint8_t> rgba(n * 4);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t *p = &state->rows[y][size_t(x) * bands * step];
        uint8_t *o = &rgba[(size_t(y) * w + x) * 4];
        if (bands == 2) {
          o[0] = o[1] = o[2] = p[0];
          o[3] = p[step];
        } else {
          for (int c = 0; c < 4; ++c)
            o[c] = p[c * step];
        }
      }
    return rgbaToRgbOnWhite(w, h, rgba.data());
  }
  default:
    fail(origin, "PNG color type " + std::to_string(state->colorType) + " is not supported");
  }
}

//===----------------------------------------------------------------------===//
// JPEG
//===----------------------------------------------------------------------===//

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jump;
  bool created = false;
  std::string error;
  bool tooLarge = false;
  uint32_t width = 0, height = 0;
  int components = 0;
  std::vector<uint8_t> pixels; // out_color_components per pixel
  ~JpegState() {
    if (created)
      jpeg_destroy_decompress(&cinfo);
  }
};

void jpegErrorExit(j_common_ptr cinfo) {
  auto *state = reinterpret_cast<JpegState *>(cinfo->client_data);
  char buffer[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buffer);
  state->error = buffer;
  std::longjmp(state->jump, 1);
}

// Warnings are ignored as Pillow ignores them, except running out of data:
// Pillow raises "image file is truncated" where libjpeg would pad with EOI.
void jpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto *state = reinterpret_cast<JpegState *>(cinfo->client_data);
    state->error = "the file is truncated";
    std::longjmp(state->jump, 1);
  }
}

bool jpegDecodeRaw(JpegState *state, const uint8_t *data, size_t size) {
  jpeg_decompress_struct *cinfo = &state->cinfo;
  cinfo->err = jpeg_std_error(&state->err);
  state->err.error_exit = jpegErrorExit;
  state->err.emit_message = jpegEmitMessage;
  if (setjmp(state->jump))
    return false;
  jpeg_create_decompress(cinfo);
  cinfo->client_data = state;
  state->created = true;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  state->width = cinfo->image_width;
  state->height = cinfo->image_height;
  state->components = cinfo->num_components;
  if (state->width == 0 || state->height == 0 ||
      uint64_t(state->width) * state->height > uint64_t(kMaxDecodedImagePixels)) {
    state->tooLarge = true;
    return false;
  }
  // JpegImagePlugin's modes by component count: L, RGB, CMYK (as "CMYK;I").
  switch (cinfo->num_components) {
  case 1:
    cinfo->out_color_space = JCS_GRAYSCALE;
    break;
  case 3:
    cinfo->out_color_space = JCS_RGB;
    break;
  case 4:
    cinfo->out_color_space = JCS_CMYK;
    break;
  default:
    state->error = "cannot handle " + std::to_string(cinfo->num_components) + "-component images";
    return false;
  }
  // Pillow outside draft mode keeps libjpeg's defaults; say them anyway.
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = TRUE;
  jpeg_start_decompress(cinfo);
  const size_t stride = size_t(cinfo->output_width) * cinfo->output_components;
  // Grown as scanlines arrive: a file that claims a large size but holds
  // little data fails before the whole buffer is allocated.
  while (cinfo->output_scanline < cinfo->output_height) {
    state->pixels.resize(stride * (size_t(cinfo->output_scanline) + 1));
    JSAMPROW row = state->pixels.data() + size_t(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  // Up to EOI: a file cut anywhere, even just before EOI, is an Error in
  // Pillow ("image file is truncated"); bytes after EOI are not read.
  jpeg_finish_decompress(cinfo);
  return true;
}

RgbImage decodeJpeg(const uint8_t *data, size_t size, const std::string &origin) {
  auto state = std::make_unique<JpegState>();
  if (!jpegDecodeRaw(state.get(), data, size)) {
    if (state->tooLarge)
      checkDimensions(origin, "JPEG", state->width, state->height);
    fail(origin, "corrupt or truncated JPEG: " + state->error);
  }
  RgbImage out;
  out.width = int(state->width);
  out.height = int(state->height);
  const size_t n = size_t(out.width) * size_t(out.height);
  if (state->components == 3) {
    out.pixels = std::move(state->pixels);
    return out;
  }
  out.pixels.resize(n * 3);
  if (state->components == 1) {
    for (size_t i = 0; i < n; ++i)
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = state->pixels[i];
    return out;
  }
  // "CMYK;I" (Adobe's inverted CMYK) then Convert.c's cmyk2rgb.
  for (size_t i = 0; i < n; ++i) {
    const uint8_t *p = &state->pixels[4 * i];
    uint32_t nk = 255u - uint8_t(255 - p[3]);
    for (int c = 0; c < 3; ++c) {
      uint32_t tmp = uint32_t(uint8_t(255 - p[c])) * nk + 128u;
      uint32_t mul = ((tmp >> 8) + tmp) >> 8;
      int v = int(nk) - int(mul);
      out.pixels[3 * i + c] = uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// WebP
//===----------------------------------------------------------------------===//

RgbImage decodeWebp(const uint8_t *data, size_t size, const std::string &origin) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    fail(origin, "corrupt or truncated WebP: cannot read its header");
  // The canvas size, before the decoder allocates two canvases of it.
  checkDimensions(origin, "WebP", uint32_t(features.width), uint32_t(features.height));
  WebPData webpData = {data, size};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options))
    fail(origin, "libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder *)> decoder(WebPAnimDecoderNew(&webpData, &options),
                                                                         WebPAnimDecoderDelete);
  if (!decoder)
    fail(origin, "corrupt or truncated WebP: libwebp cannot parse it");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info))
    fail(origin, "corrupt WebP: no canvas information");
  checkDimensions(origin, "WebP", info.canvas_width, info.canvas_height);
  uint8_t *rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) || !rgba)
    fail(origin, "corrupt or truncated WebP: its first frame does not decode");
  const int w = int(info.canvas_width), h = int(info.canvas_height);
  // Pillow's mode: RGBA when the bitstream says it has alpha, else RGBX
  // read as RGB (the alpha bytes dropped).
  if (features.has_alpha)
    return rgbaToRgbOnWhite(w, h, rgba);
  RgbImage out;
  out.width = w;
  out.height = h;
  const size_t n = size_t(w) * size_t(h);
  out.pixels.resize(n * 3);
  for (size_t i = 0; i < n; ++i)
    std::memcpy(&out.pixels[3 * i], &rgba[4 * i], 3);
  return out;
}

} // namespace

RgbImage decodeImage(const uint8_t *data, size_t size, const std::string &origin) {
  if (size == 0)
    fail(origin, "the file is empty");
  switch (sniffImageFormat(data, size)) {
  case ImageFormat::Png:
    return decodePng(data, size, origin);
  case ImageFormat::Jpeg:
    return decodeJpeg(data, size, origin);
  case ImageFormat::Webp:
    return decodeWebp(data, size, origin);
  case ImageFormat::Unknown:
    break;
  }
  fail(origin, "unsupported image format (PNG, JPEG and WebP are supported)");
}

RgbImage loadImage(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("image " + path + ": cannot open the file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw Error("image " + path + ": cannot read the file");
  return decodeImage(bytes.data(), bytes.size(), path);
}

} // namespace qwen::rt
