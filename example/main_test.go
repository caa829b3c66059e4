package example_test

import (
	"testing"

	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// TestMain lets vmtest boot each test kernel once for all of this
// package's TestVM* tests, with the loop module loaded for loopwatch's
// probes.
func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Modules("loop")) }
