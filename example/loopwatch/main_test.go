package loopwatch_test

import (
	"testing"

	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// TestMain lets vmtest boot each test kernel once, with the loop module
// of the kernel's own packages loaded, for all of this package's TestVM*
// tests.
func TestMain(m *testing.M) { vmtest.Main(m, vmtest.Modules("loop")) }
