package ledger

// registeredModules is the one place modules are registered. Order matters
// only for Handles overlaps, which must not exist.
func registeredModules() []Module {
	return []Module{
		accountsModule{},
		nodesModule{},
		validatorsModule{},
		policiesModule{},
		groupsModule{},
		conversationsModule{},
		anchorsModule{},
	}
}
