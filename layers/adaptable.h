// AdaptableLayer: a layer with a weight (and optional bias) that can carry one
// low-rank adapter per task (Linear and Conv2d derive from it).
//
// Adapters are children named "adapters.<task>" and owned by their task; the
// current task's adapter, if it has one, is added to the frozen weight in the
// forward pass, and tasks without one see the plain weight. merge() adds the
// current task's dW into the weight for inference without the adapter's cost;
// unmerge() puts back the exact weight it kept aside (bit for bit), so merging
// never disturbs other tasks. While merged, switching task, attaching an
// adapter or cloning the layer is refused; move it (to()) only unmerged.
#pragma once

#include <cstdint>
#include <memory>

#include "layers/adapters.h"
#include "layers/module.h"

namespace layers {

class AdaptableLayer : public Module {
 public:
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without a bias

  // The adapter of `task`, or null.
  Adapter* adapter(int64_t task) const;
  // The current task's adapter while it is applied in forward (not merged), or null.
  Adapter* active_adapter() const;

  void merge();
  void unmerge();
  bool merged() const { return merged_weight_backup_.defined(); }

  void set_task(int64_t task) override;

 protected:
  // Registers `adapter` as child "adapters.<task>", owned by `task`, with this
  // layer's mode, device and dtype. A task has at most one adapter per layer.
  void attach_adapter(int64_t task, std::shared_ptr<Adapter> adapter);
  void check_not_merged(const std::string& what) const;

  Tensor weight_, bias_;

 private:
  Tensor merged_weight_backup_;  // the weight before merge(), defined while merged
};

}  // namespace layers
