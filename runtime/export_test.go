package runtime

// SymbolAddrs is symbolAddrs, for tests.
var SymbolAddrs = symbolAddrs
