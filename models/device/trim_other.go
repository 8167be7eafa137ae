//go:build !(linux && cgo)

package device

// trimCHeap does nothing without glibc (see trim_glibc.go).
func trimCHeap() {}
