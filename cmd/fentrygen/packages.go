package main

import (
	"os"
	"path/filepath"

	"github.com/fentrygen/fentrygen/gen"
	"github.com/fentrygen/fentrygen/load"
)

// Environment variables: the cache's root folder (shared with the VM
// harness's kernels), and a switch that turns off the cache of the go
// command's export listings.
const (
	cacheEnv   = "FENTRYGEN_CACHE"
	noCacheEnv = "FENTRYGEN_NOCACHE"
)

// loadPackages loads the packages patterns name, relative to cwd.
func loadPackages(cwd string, patterns, tags []string, output string) ([]*gen.Input, gen.Diagnostics, error) {
	return load.Packages(load.Config{Dir: cwd, Patterns: patterns, Tags: tags, Output: output, CacheDir: exportCache()})
}

// exportCache is where export listings are kept: exports in
// $FENTRYGEN_CACHE, else in fentrygen in the user's cache folder; "" when
// $FENTRYGEN_NOCACHE is set or there is no cache folder.
func exportCache() string {
	if os.Getenv(noCacheEnv) != "" {
		return ""
	}
	root := os.Getenv(cacheEnv)
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		root = filepath.Join(base, "fentrygen")
	}
	return filepath.Join(root, "exports")
}
