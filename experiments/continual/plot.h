// A small plotting module: an RGB canvas with lines, rectangles and text
// (stb_easy_font's bitmap glyphs, scaled), saved as PNG (stb_image_write),
// and three chart types built on it: line charts, heatmaps and grouped
// stacked bars. Enough for readable axes, ticks and legends, nothing more.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace continual::plot {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};
inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};
inline constexpr Color kGrey{150, 150, 150};
inline constexpr Color kLightGrey{225, 225, 225};

// The i-th colour of a palette of distinct colours (Tableau 10), cycling.
Color palette(size_t i);
// Mixes c with white: amount 0 keeps c, 1 gives white.
Color lighten(Color c, double amount);
// Viridis-like colour of v in [0, 1] (clamped), for heatmaps.
Color colormap(double v);

class Canvas {
 public:
  Canvas(int width, int height, Color background = kWhite);
  int width() const { return width_; }
  int height() const { return height_; }
  Color pixel(int x, int y) const;

  // Fills [x0, x1) x [y0, y1), clipped to the canvas.
  void fill_rect(int x0, int y0, int x1, int y1, Color color);
  void rect_outline(int x0, int y0, int x1, int y1, Color color);
  void line(double x0, double y0, double x1, double y1, Color color, int thickness = 1);
  // Text with its top-left corner at (x, y); `scale` pixels per glyph unit.
  // Characters outside printable ASCII are drawn as '?'.
  void text(int x, int y, const std::string& s, Color color, int scale = 2);
  // Text turned 90 degrees counter-clockwise (reads bottom to top), its
  // bounding box's top-left corner at (x, y).
  void text_vertical(int x, int y, const std::string& s, Color color, int scale = 2);
  static int text_width(const std::string& s, int scale = 2);
  static int text_height(int scale = 2);

  // Writes a PNG atomically. Throws std::runtime_error naming the path.
  void save_png(const std::filesystem::path& path) const;

 private:
  void put(int x, int y, Color color);
  template <class Put>
  void glyph_quads(const std::string& s, int scale, Put&& put_rect) const;
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

struct Series {
  std::string name;
  std::vector<double> x, y;
  Color color;
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<double> y_min, y_max;  // automatic (nice bounds around the data) when unset
  bool integer_x = true;               // ticks only at whole numbers (task indices)
};
Canvas draw_line_chart(const LineChart& chart, int width = 820, int height = 520);

// Ragged rows allowed: a missing cell is drawn grey. Values in [0, 1].
struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> row_labels, column_labels;
  std::vector<std::vector<double>> values;
};
Canvas draw_heatmap(const Heatmap& map, int width = 720, int height = 640);

// Groups along x (e.g. tasks); in each group one bar per series (e.g. method),
// each bar a stack of parts (e.g. conv, classifier) drawn in shades of the
// series' colour.
struct StackedBars {
  std::string title, x_label, y_label;
  std::vector<std::string> group_labels;
  std::vector<std::string> part_names;
  struct Bar {
    std::string name;
    Color color;
    std::vector<std::vector<double>> parts;  // [group][part]
  };
  std::vector<Bar> bars;
};
Canvas draw_stacked_bars(const StackedBars& chart, int width = 900, int height = 560);

// Tick positions: about `count` whole multiples of a round step (1, 2, 5 x 10^k),
// from the last one at or below `low` to the first one at or above `high`.
std::vector<double> nice_ticks(double low, double high, int count);
// Tick label: "0.25", "40", "1.5k", "2.3M".
std::string tick_label(double value, double step);

}  // namespace continual::plot
