package device

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// ExecCounter counts what running GoMLX executors costs: how many executables were built and compiled (GoMLX
// caches one per executor and distinct input shapes), the seconds that took, and the executions and their
// seconds. Use one per phase (or share one across phases and take differences of Snapshot).
//
// How a compile is seen: GoMLX v0.28.8's Exec compiles inside its first call with new shapes and has no hook for
// it, so on one device Run compiles first, explicitly (model.Exec.Compile with the arguments' shapes, the same cache
// entry the call then finds), and times that apart from the execution. On a mesh the arguments are sharded inside
// the call, so the whole first call with new shapes counts as its compile (one execution's time included).
//
// It is safe for concurrent use.
type ExecCounter struct {
	// OnCompile, if set, is called before each compile with the executor's name and the input shapes, e.g. for a
	// "compiling (shape …)" progress line.
	OnCompile func(exec string, shapes []shapes.Shape)

	mu   sync.Mutex
	seen map[*model.Exec][]string // each executor's compiled shape keys
	s    ExecStats
}

// ExecStats are an ExecCounter's totals.
type ExecStats struct {
	Compiles       int
	CompileSeconds float64
	Executions     int
	ExecuteSeconds float64
}

// Sub is s − o (what happened between two snapshots).
func (s ExecStats) Sub(o ExecStats) ExecStats {
	return ExecStats{Compiles: s.Compiles - o.Compiles, CompileSeconds: s.CompileSeconds - o.CompileSeconds,
		Executions: s.Executions - o.Executions, ExecuteSeconds: s.ExecuteSeconds - o.ExecuteSeconds}
}

// Snapshot returns the totals so far (zero for a nil counter).
func (c *ExecCounter) Snapshot() ExecStats {
	if c == nil {
		return ExecStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

// ShapesKey is a stable text key of input shapes, e.g. "(Int32)[8 128] (Float32)[]".
func ShapesKey(ss []shapes.Shape) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// isNew reports whether exec has not compiled shapes key yet, and records it.
func (c *ExecCounter) isNew(exec *model.Exec, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[*model.Exec][]string{}
	}
	for _, k := range c.seen[exec] {
		if k == key {
			return false
		}
	}
	c.seen[exec] = append(c.seen[exec], key)
	return true
}

// Run is p.Run(exec, args...) counted: a first call with new argument shapes is a compile (timed apart on one
// device, see ExecCounter), every call an execution. A nil counter just runs.
func (c *ExecCounter) Run(p Placement, exec *model.Exec, args ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	if c == nil {
		return p.Run(exec, args...)
	}
	ss := make([]shapes.Shape, len(args))
	for i, a := range args {
		ss[i] = a.Shape()
	}
	return c.count(exec, ss, p.Sharded(), func() ([]*tensors.Tensor, error) { return p.Run(exec, args...) })
}

// Count counts run, one call of exec on one device with arguments of shapes ss, as Run counts its calls: for
// callers whose arguments Run cannot take (donated buffers, which no longer tell their shape; here ss gives it).
// A nil counter just runs.
func (c *ExecCounter) Count(exec *model.Exec, ss []shapes.Shape, run func() ([]*tensors.Tensor, error)) ([]*tensors.Tensor, error) {
	if c == nil {
		return run()
	}
	return c.count(exec, ss, false, run)
}

// count runs run, a call of exec with arguments of shapes ss, counting a compile on new shapes (inside the call
// when sharded, else explicitly before it) and the execution.
func (c *ExecCounter) count(exec *model.Exec, ss []shapes.Shape, sharded bool, run func() ([]*tensors.Tensor, error)) ([]*tensors.Tensor, error) {
	compiledInCall := false
	if c.isNew(exec, ShapesKey(ss)) {
		// OnCompile is told on every new shape for this counter, also when the executable turns out to exist.
		if c.OnCompile != nil {
			c.OnCompile(exec.Name(), ss)
		}
		if sharded {
			compiledInCall = true
		} else {
			start := time.Now()
			g, err := exec.Compile(ss...)
			if err != nil {
				return nil, fmt.Errorf("compiling %s for %s: %w", exec.Name(), ShapesKey(ss), err)
			}
			// A graph another counter (or an uncounted run) built earlier is a cache hit, not a compile.
			if _, built := builtGraphs.LoadOrStore(g.GraphId(), true); !built {
				// The compiler's working memory was malloc'ed and freed: hand it back before the executable runs
				// (its temporaries would otherwise stack on it at the phase's peak).
				trimCHeap()
				c.add(ExecStats{Compiles: 1, CompileSeconds: time.Since(start).Seconds()})
			}
		}
	}
	start := time.Now()
	outs, err := run()
	dt := time.Since(start).Seconds()
	if compiledInCall {
		c.add(ExecStats{Compiles: 1, CompileSeconds: dt, Executions: 1})
	} else {
		c.add(ExecStats{Executions: 1, ExecuteSeconds: dt})
	}
	return outs, err
}

// builtGraphs holds the id of every graph a counter has seen compiled, so each executable counts once per
// process however many counters run it.
var builtGraphs sync.Map

func (c *ExecCounter) add(d ExecStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Compiles += d.Compiles
	c.s.CompileSeconds += d.CompileSeconds
	c.s.Executions += d.Executions
	c.s.ExecuteSeconds += d.ExecuteSeconds
}
