// Per-sample preprocessing from bytes to network input: per-channel
// normalisation and, for training, augmentation by a random crop from the
// zero-padded image and a random horizontal flip.
//
// Pixel values are first scaled to [0, 1] (byte / 255), then normalised:
//   x = (byte / 255 - mean[c]) / std[c]
// Padding is zero bytes, normalised like any other pixel (as torchvision's
// RandomCrop(padding) before Normalize does).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "datasets/image_dataset.h"
#include "engine/random.h"

namespace datasets {

// Per-channel mean and standard deviation in [0, 1] pixel units. Empty vectors
// mean no normalisation (mean 0, std 1).
struct ChannelStats {
  std::vector<float> mean, std;
};

// Statistics over the images `indices` (the training split; never the test
// split), computed exactly with integer sums. A channel of constant value gets
// std 1 so that normalising never divides by zero.
ChannelStats compute_channel_stats(const ImageDataset& data, std::span<const int64_t> indices);

// ImageNet's RGB statistics (torchvision's), for backbones pretrained on it.
ChannelStats imagenet_channel_stats();

// Resizes every image of `data` in place to (height, width), each channel
// plane with bilinear interpolation (stb_image_resize's triangle filter, which
// also averages the covered pixels when shrinking). No-op at the same size.
// Throws std::invalid_argument for a non-positive size.
void resize_images(ImageDataset& data, int64_t height, int64_t width);

struct Augmentation {
  int64_t crop_padding = 4;     // crop an HxW window from the image padded by this much; 0: no crop
  bool horizontal_flip = true;  // mirror left-right with probability 1/2
};

// Writes image `index` as (C, H, W) floats into `out`. With an augmentation,
// the crop offsets and the flip are drawn from `gen` (crop rows, crop columns,
// then the flip), so the same generator state gives the same image.
// Throws std::invalid_argument when the statistics do not match the channel count.
void image_to_float(const ImageDataset& data, int64_t index, const ChannelStats& stats,
                    const Augmentation* augmentation, engine::Generator* gen, float* out);

}  // namespace datasets
