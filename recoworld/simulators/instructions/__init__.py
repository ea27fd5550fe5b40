"""Instructions: the structured fields, template sentences and the parsers (lexical and
embedding) that turn instruction text into the observation's instruction vector."""
