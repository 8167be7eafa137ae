package llama

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Cache is a fixed-length key/value cache for incremental decoding: per layer K and V [B, MaxLen, KVH, D] and the
// position Pos (scalar int32) where the next tokens go. Fixed shapes keep one compiled graph per (B, S).
type Cache struct {
	K, V []*Node
	Pos  *Node
}

// CacheShape is the shape of one layer's K (or V) cache.
func (m *Model) CacheShape(batch, maxLen int) shapes.Shape {
	return shapes.Make(m.DType, batch, maxLen, m.Config.NumKVHeads, m.Config.HeadDim)
}

// NewCacheTensors makes zeroed cache tensors (2 per layer: K then V) for a batch and length.
func (m *Model) NewCacheTensors(batch, maxLen int) []*tensors.Tensor {
	ts := make([]*tensors.Tensor, 0, 2*m.Config.NumLayers)
	for i := 0; i < 2*m.Config.NumLayers; i++ {
		ts = append(ts, tensors.FromShape(m.CacheShape(batch, maxLen)))
	}
	return ts
}

// CacheFromNodes builds a Cache from 2·N nodes (K0, V0, K1, V1, ...) and a position.
func CacheFromNodes(kv []*Node, pos *Node) *Cache {
	c := &Cache{Pos: pos}
	for i := 0; i+1 < len(kv); i += 2 {
		c.K = append(c.K, kv[i])
		c.V = append(c.V, kv[i+1])
	}
	return c
}

// Nodes flattens the cache as K0, V0, K1, V1, ...
func (c *Cache) Nodes() []*Node {
	var ns []*Node
	for i := range c.K {
		ns = append(ns, c.K[i], c.V[i])
	}
	return ns
}

// length is T, the number of key positions the cache holds.
func (c *Cache) length() int { return c.K[0].Shape().Dimensions[1] }

// write stores layer i's new keys and values [B, S, KVH, D] at Pos in the cache and in next (the updated cache
// Forward returns), and returns the whole cached keys and values [B, T, KVH, D] for attention.
func (c *Cache) write(next *Cache, i int, k, v *Node) (keys, values *Node) {
	keys, values = writeCache(c.K[i], k, c.Pos), writeCache(c.V[i], v, c.Pos)
	next.K, next.V = append(next.K, keys), append(next.V, values)
	return keys, values
}

// writeCache writes update [B, S, KVH, D] into cache [B, T, KVH, D] at index pos along axis 1. Backends with
// DynamicUpdateSlice (XLA) use it; the pure-Go backend lacks it, so there a one-hot [T, S] selection does the same.
func writeCache(cache, update, pos *Node) *Node {
	g := cache.Graph()
	pos = ConvertDType(pos, dtypes.Int32)
	if g.Backend().Capabilities().Operations[compute.OpTypeDynamicUpdateSlice] {
		zero := ScalarZero(g, dtypes.Int32)
		return DynamicUpdateSlice(cache, update, []*Node{zero, pos, zero, zero})
	}
	T, S := cache.Shape().Dimensions[1], update.Shape().Dimensions[1]
	t := Iota(g, shapes.Make(dtypes.Int32, T, S), 0)
	s := Add(Iota(g, shapes.Make(dtypes.Int32, T, S), 1), pos)
	sel := ConvertDType(Equal(t, s), cache.DType())            // [T, S]
	keep := OneMinus(ReduceAndKeep(sel, ReduceSum, 1))         // [T, 1]: 0 where written
	written := Einsum("ts,bskd->btkd", sel, update)            // [B, T, KVH, D]
	return Add(Mul(cache, Reshape(keep, 1, T, 1, 1)), written) // exact: one term is zero
}
