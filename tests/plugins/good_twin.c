/* good_twin.c — test plugin whose scheme shares the name identity with good_identity */
#include "test_plugin.h"

TP_PLUGIN("identity_twin", "0.1",
          "test plugin whose scheme shares the name identity with good_identity",
          "identity", "test plugin whose scheme shares the name identity with good_identity",
          NULL, 0, tp_configure_none, tp_release_none, tp_size_bits_f32, tp_copy)
