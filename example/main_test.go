package example_test

import (
	"testing"

	"github.com/fentrygen/fentrygen/internal/vmtest"
)

// TestMain lets vmtest boot each test kernel once for all of this
// package's TestVM* tests.
func TestMain(m *testing.M) { vmtest.Main(m) }
