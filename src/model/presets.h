/* SPDX-License-Identifier: MIT */
/* Named model shapes for `whale init --preset NAME`. */
#ifndef WHALE_PRESETS_H
#define WHALE_PRESETS_H

#include "base/err.h"
#include "io/config.h"

/* Fill cfg with the named preset. 0, or -1 with err listing the names. */
int preset_config(const char *name, ModelConfig *cfg, Err *err);

/* Space-separated preset names, for help text. */
const char *preset_names(void);

#endif
