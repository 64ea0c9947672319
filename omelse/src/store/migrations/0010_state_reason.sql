-- Why a message ended in a state other than delivered (or is on hold), as the log said it: the
-- reply of a check that refused it, `queue file size limit exceeded`, how the client went away,
-- the command that deleted it. docs/api.md lists the states.
ALTER TABLE messages ADD COLUMN state_reason text;
