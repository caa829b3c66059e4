// Package argwatch reads arguments that are hard to get right by hand: the
// seventh and later of a nine-argument function (do_mmap), and a struct
// passed by value (kuid_t, into from_kuid_munged).
package argwatch

//go:generate go tool fentrygen

// OnlyPid, when not zero, limits the probes to one process.
var OnlyPid uint32

// Mmap is one call of do_mmap.
//
//fentrygen:event
type Mmap struct {
	Len   uint64
	Prot  uint64
	Flags uint64
	Pgoff uint64 // past the sixth argument slot
}

// Uid is one kuid_t turned into a uid.
//
//fentrygen:event
type Uid struct {
	Kuid uint32 // the struct passed by value
	Ret  uint32
}

//fentry:do_mmap args=len,prot,flags,pgoff
func onMmap(p *OnMmap) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewMmapView(p)
	e.SetLen(p.Len)
	e.SetProt(p.Prot)
	e.SetFlags(p.Flags)
	e.SetPgoff(p.Pgoff)
	e.Output()
}

//fexit:from_kuid_munged args=kuid ret
func onUid(p *OnUid) {
	if OnlyPid != 0 {
		p.FilterTgid(OnlyPid)
	}
	e := NewUidView(p)
	e.SetKuid(p.Kuid)
	e.SetRet(p.Ret)
	e.Output()
}
