// A small plotting module on cairo: a canvas with lines, rectangles, markers
// and anti-aliased text, recorded once and written as PNG (raster, for
// screens), SVG and PDF (vector, for papers and slides) from the same drawing;
// and three chart types built on it: line charts (linear or log axes, error
// bars, markers only for scatter plots), heatmaps and grouped bars (stacked
// or side by side). Coordinates are pixels of the PNG at scale 1, origin top
// left, y downwards; vector files use the same units (points).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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
  ~Canvas();
  Canvas(Canvas&&) noexcept;
  Canvas& operator=(Canvas&&) noexcept;
  int width() const { return width_; }
  int height() const { return height_; }
  // The colour at (x, y) of the drawing rasterised at scale 1 (for tests).
  Color pixel(int x, int y) const;

  // Fills [x0, x1) x [y0, y1).
  void fill_rect(double x0, double y0, double x1, double y1, Color color);
  // A one-unit frame just inside [x0, x1) x [y0, y1).
  void rect_outline(double x0, double y0, double x1, double y1, Color color);
  void line(double x0, double y0, double x1, double y1, Color color, double thickness = 1);
  // Connected segments through `points` (x, y), with round joins.
  void polyline(const std::vector<std::pair<double, double>>& points, Color color, double thickness);
  // A filled disc with a white rim, so that overlapping markers stay apart.
  void marker(double x, double y, double radius, Color color);
  // UTF-8 text with its top-left corner at (x, y). `scale` 2 is the size of
  // tick labels (14 px), 3 that of titles.
  void text(double x, double y, const std::string& s, Color color, double scale = 2);
  // Text turned 90 degrees counter-clockwise (reads bottom to top), its
  // bounding box's top-left corner at (x, y).
  void text_vertical(double x, double y, const std::string& s, Color color, double scale = 2);
  static double text_width(const std::string& s, double scale = 2);
  static double text_height(double scale = 2);

  // Each writes atomically and throws std::runtime_error naming the path.
  // PNG at twice the canvas size (sharp on high-density screens and in print).
  void save_png(const std::filesystem::path& path) const;
  void save_svg(const std::filesystem::path& path) const;
  void save_pdf(const std::filesystem::path& path) const;
  // <stem>.png, <stem>.svg and <stem>.pdf.
  void save_all(const std::filesystem::path& stem) const;

 private:
  struct Surface;  // cairo's recording surface and its context
  int width_, height_;
  std::unique_ptr<Surface> surface_;
};

struct Series {
  std::string name;
  std::vector<double> x, y;
  Color color;
  std::vector<double> y_error;  // empty, or one half-height of an error bar per point
  bool lines = true;            // false: markers only (a scatter plot)
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<double> y_min, y_max;  // automatic (nice bounds around the data) when unset
  bool integer_x = true;               // ticks only at whole numbers (task indices)
  bool log_x = false, log_y = false;   // decades on a log scale (values must be > 0)
  std::string note;                    // a line of small text under the x label, e.g. what the bars are
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
// each bar made of parts (e.g. conv, classifier) in shades of the series'
// colour: stacked, or side by side (needed on a log scale, where stacks mislead).
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
  bool stacked = true;
  bool log_y = false;  // only with stacked = false; parts of 0 are not drawn
};
Canvas draw_stacked_bars(const StackedBars& chart, int width = 900, int height = 560);

// Tick positions: about `count` whole multiples of a round step (1, 2, 5 x 10^k),
// from the last one at or below `low` to the first one at or above `high`.
std::vector<double> nice_ticks(double low, double high, int count);
// Tick positions of a log axis: the powers of ten from the one at or below
// `low` to the one at or above `high` (with 2 and 5 times them when that
// spans fewer than three decades).
std::vector<double> log_ticks(double low, double high);
// Tick label: "0.25", "40", "1.5k", "2.3M".
std::string tick_label(double value, double step);

}  // namespace continual::plot
