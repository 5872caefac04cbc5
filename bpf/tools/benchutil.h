/* Transitional: the helpers not yet on common/bench.h include this name. */
#include "common/bench.h"
