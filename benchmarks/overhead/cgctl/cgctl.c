/* Callgrind client requests for the instruction count (instructions.py).
 * Loaded with ctypes by benchapp/callgrind.py; a no-op outside valgrind. */
#include <valgrind/valgrind.h>
#include <valgrind/callgrind.h>

int cg_running(void) { return RUNNING_ON_VALGRIND; }

/* Dump the counts (all threads) since the previous dump, then zero them. */
void cg_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }

/* Switch the calling thread's event collection on or off (footprint.py). */
void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
