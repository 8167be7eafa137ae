package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/adapterlab/llama-adapter/clip"
	"github.com/adapterlab/llama-adapter/clip/precompute"
	"github.com/adapterlab/llama-adapter/models/device"
)

// runFeatures is the `features` subcommand: it precomputes the CLIP feature cache of a data set.
//
//	go run ./experiments/scienceqa features -data DIR -clip PATH [-cache DIR] [-layers 8,16,24] [-batch N]
func runFeatures(args []string) error {
	fs := flag.NewFlagSet("features", flag.ContinueOnError)
	data := fs.String("data", "", "ScienceQA folder holding images/<split>/<pid>/image.png (required)")
	clipPath := fs.String("clip", "", "Hugging Face CLIP checkpoint: folder with config.json + safetensors, or a .safetensors file (required)")
	cache := fs.String("cache", "", "feature cache root (default "+precompute.DefaultCacheDir()+")")
	layers := fs.String("layers", "", "1-based encoder layers whose class token is kept, e.g. 8,16,24 (default: N/3, 2N/3, N)")
	batch := fs.Int("batch", 16, "images per forward pass")
	splits := fs.String("splits", "", "comma-separated splits to process (default: every folder under images/)")
	postNorm := fs.Bool("postnorm", false, "apply CLIP's post-layernorm to each class token")
	project := fs.Bool("project", false, "apply CLIP's visual projection (needs -postnorm)")
	var dtype device.DType
	device.DTypeVar(fs, &dtype, "dtype", device.Float32, "weights dtype: float32, bfloat16 or float16 (part of the cache key)",
		device.Float32, device.BFloat16, device.Float16)
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *clipPath == "" {
		fs.Usage()
		return fmt.Errorf("features: -data and -clip are required")
	}
	o := precompute.Options{Data: *data, CLIP: *clipPath, Cache: *cache, Batch: *batch, Progress: !*quiet,
		FeatureOptions: clip.FeatureOptions{PostNorm: *postNorm, Project: *project}}
	if *layers != "" {
		ls, err := clip.ParseLayers(*layers)
		if err != nil {
			return fmt.Errorf("features: %w", err)
		}
		o.Layers = ls
	}
	if *splits != "" {
		o.Splits = strings.Split(*splits, ",")
	}
	o.DType = dtype.GoMLX()
	_, err := precompute.Run(o, os.Stderr)
	return err
}
