/* broken_dupname.c — test plugin named int, like the built-in one, to be refused as a duplicate */
#include "test_plugin.h"

/* The flaw is the plugin name "int". */
TP_PLUGIN("int", "0.1",
          "test plugin named int, like the built-in one, to be refused as a duplicate",
          "dup", "test plugin named int, like the built-in one, to be refused as a duplicate",
          NULL, 0, tp_configure_none, tp_release_none, tp_size_bits_f32, tp_copy)
