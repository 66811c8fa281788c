-- A locked model gets the server's own message and a one-key "Use Auto"; an unknown one too; so do a bad
-- sign-in token and overage on Free.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    require('switchboard.models').select(vim.fn.getcwd(), 'claude-haiku-4.5')
    T.wait_notified('next messages use Claude Haiku 4.5')
    T.choose('Claude Opus 4.5  2.2×')
    T.keys('gm')
    local note = T.wait_notified('Claude Opus 4.5 needs Pro, Pro+ or Power')
    T.eq(note.level, vim.log.levels.ERROR, 'shown as an error')
    T.contains(note.msg, "you're on Free", "the server's message")
    T.contains(note.msg, '[ga or :Switchboard action: Use Auto]', 'the offered action')
    T.eq(require('switchboard.status').selected(vim.fn.getcwd()), 'claude-haiku-4.5', 'selection unchanged')
    T.keys('ga')
    T.wait_notified('next messages use Auto')
    T.eq(require('switchboard.status').selected(vim.fn.getcwd()), 'auto', 'Use Auto applied')

    vim.cmd('Switchboard model gpt-4')
    note = T.wait_notified("Unknown model 'gpt-4'")
    T.contains(note.msg, 'Choose one of: auto, claude-haiku-4.5', "the server's message")
    T.contains(note.msg, 'Use Auto', 'the offered action')
    -- Sign-in with a pasted token: the server's verdict is shown.
    vim.cmd('Switchboard signin not-a-jwt')
    T.wait_notified('Switchboard: Free. Entitlement is malformed: you are on Free')
    vim.cmd('Switchboard overage on')
    T.wait_notified('Overage is for paid plans')
    T.eq(vim.fn.getcompletion('Switchboard mo', 'cmdline'), { 'model' }, 'subcommand completion')
    T.eq(vim.fn.getcompletion('Switchboard model claude-s', 'cmdline'), { 'claude-sonnet-4.0', 'claude-sonnet-4.5' },
      'model id completion')
    vim.cmd('Switchboard nonsense')
    T.wait_notified('unknown command "nonsense"')
  end,
}
