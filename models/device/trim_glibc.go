//go:build linux && cgo

package device

/*
#include <malloc.h>
*/
import "C"

// trimCHeap hands the C heap's free memory back to the operating system (glibc's malloc_trim: every arena's free
// pages, not only the top of the main heap). XLA's CPU client allocates its buffers, and its compiler its working
// memory, with malloc: what a finished phase freed otherwise stays resident in glibc's arenas.
func trimCHeap() { C.malloc_trim(0) }
