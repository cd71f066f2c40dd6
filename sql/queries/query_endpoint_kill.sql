-- Stop one reader's query (its client went away, or the process is shutting down). The query endpoint tags
-- each reader session with an internal log_comment that readers cannot set or change.
KILL QUERY WHERE Settings['log_comment'] = {tag:String} ASYNC
