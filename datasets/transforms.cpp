#include "datasets/transforms.h"

#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace datasets {

ChannelStats compute_channel_stats(const ImageDataset& data, std::span<const int64_t> indices) {
  if (indices.empty()) throw std::invalid_argument("compute_channel_stats: no images");
  const int64_t plane = data.height * data.width;
  ChannelStats stats;
  for (int64_t c = 0; c < data.channels; ++c) {
    // Integer sums are exact, so the result does not depend on summation order.
    uint64_t sum = 0, sum_squares = 0;
    for (int64_t i : indices) {
      if (i < 0 || i >= data.size())
        throw std::invalid_argument("compute_channel_stats: index " + std::to_string(i) +
                                    " outside the data set of " + std::to_string(data.size()) + " images");
      const uint8_t* p = data.image(i) + c * plane;
      for (int64_t k = 0; k < plane; ++k) {
        sum += p[k];
        sum_squares += uint64_t{p[k]} * p[k];
      }
    }
    const double n = static_cast<double>(plane) * static_cast<double>(indices.size());
    const double mean = static_cast<double>(sum) / n;
    const double variance = std::max(0.0, static_cast<double>(sum_squares) / n - mean * mean);
    const double std = std::sqrt(variance) / 255.0;
    stats.mean.push_back(static_cast<float>(mean / 255.0));
    stats.std.push_back(std > 0 ? static_cast<float>(std) : 1.0f);
  }
  return stats;
}

ChannelStats imagenet_channel_stats() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

void resize_images(ImageDataset& data, int64_t height, int64_t width) {
  if (height <= 0 || width <= 0)
    throw std::invalid_argument("resize_images: size " + std::to_string(height) + "x" + std::to_string(width) +
                                " must be positive");
  if (height == data.height && width == data.width) return;
  const int64_t planes = data.size() * data.channels;
  const int64_t from = data.height * data.width, to = height * width;
  std::vector<uint8_t> resized(static_cast<size_t>(planes * to));
  for (int64_t p = 0; p < planes; ++p) {
    const int ok = stbir_resize_uint8_generic(
        data.pixels.data() + p * from, static_cast<int>(data.width), static_cast<int>(data.height), 0,
        resized.data() + p * to, static_cast<int>(width), static_cast<int>(height), 0, 1, STBIR_ALPHA_CHANNEL_NONE, 0,
        STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
    if (!ok)
      throw std::runtime_error("resize_images: cannot resize " + std::to_string(data.height) + "x" +
                               std::to_string(data.width) + " to " + std::to_string(height) + "x" +
                               std::to_string(width));
  }
  data.pixels = std::move(resized);
  data.height = height;
  data.width = width;
}

void image_to_float(const ImageDataset& data, int64_t index, const ChannelStats& stats,
                    const Augmentation* augmentation, engine::Generator* gen, float* out) {
  const int64_t C = data.channels, H = data.height, W = data.width;
  const bool normalise = !stats.mean.empty();
  if (normalise && (static_cast<int64_t>(stats.mean.size()) != C || static_cast<int64_t>(stats.std.size()) != C))
    throw std::invalid_argument("image_to_float: statistics for " + std::to_string(stats.mean.size()) + " and " +
                                std::to_string(stats.std.size()) + " channels, images have " + std::to_string(C));
  // Output pixel (y, x) reads source pixel (y + dy, x + dx), mirrored when flipped;
  // sources outside the image are the zero padding.
  int64_t dy = 0, dx = 0;
  bool flip = false;
  if (augmentation != nullptr) {
    if (gen == nullptr) throw std::invalid_argument("image_to_float: augmentation needs a generator");
    const int64_t pad = augmentation->crop_padding;
    if (pad > 0) {
      dy = static_cast<int64_t>(gen->below(static_cast<uint64_t>(2 * pad + 1))) - pad;
      dx = static_cast<int64_t>(gen->below(static_cast<uint64_t>(2 * pad + 1))) - pad;
    }
    if (augmentation->horizontal_flip) flip = gen->below(2) == 1;
  }
  const uint8_t* image = data.image(index);
  for (int64_t c = 0; c < C; ++c) {
    const float scale = normalise ? 1.0f / (255.0f * stats.std[c]) : 1.0f / 255.0f;
    const float shift = normalise ? -stats.mean[c] / stats.std[c] : 0.0f;
    const uint8_t* plane = image + c * H * W;
    float* out_plane = out + c * H * W;
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y + dy;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = (flip ? W - 1 - x : x) + dx;
        const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        out_plane[y * W + x] = static_cast<float>(inside ? plane[sy * W + sx] : 0) * scale + shift;
      }
    }
  }
}

}  // namespace datasets
