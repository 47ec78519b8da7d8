// The methods compared by the runner (naive, joint, finetune-head,
// finetune-fc, lora, cp-lora, sena, separate, ewc, lwf, replay, packnet), as Learners on
// layers::ContinualModel, which implements each one (see
// layers/continual_model.h), set up with the run's protocol choices
// (--scaling, --task-bn, --branch-init, ...). Every method starts from the
// same network (--arch, seeded) with the study's shared head: one block of
// rows per task, other tasks' logits masked.
// ewc, lwf and replay add a loss term to the naive network (learners/ewc.h,
// lwf.h, replay.h); packnet shares its weights out among the tasks (learners/packnet.h);
// pnn grows a network of columns of --arch's layout (learners/pnn.h).
#pragma once

#include <memory>
#include <string>

#include "experiments/continual/config.h"
#include "experiments/continual/learner.h"
#include "experiments/continual/task_data.h"
#include "layers/continual_model.h"

namespace continual {

// A fresh network for one cell, initialised from `seed` (the backbone from
// --init when given), with adapters of conv rank `rank` (0: --rank's first).
// Throws std::invalid_argument for an unknown method, architecture or adapter
// placement. `config` and `data` must outlive the learner (lwf builds its
// teacher networks from them, replay its memory).
std::unique_ptr<Learner> make_learner(const RunConfig& config, const std::string& method, const TaskData& data,
                                      uint64_t seed, int64_t rank = 0);

// The network of a learner make_learner built (for merging and exporting a
// task's model); for ewc, lwf, replay and packnet the naive network they act
// on. Throws std::logic_error for pnn's and any other learner.
layers::ContinualModel& continual_model(Learner& learner);

}  // namespace continual
