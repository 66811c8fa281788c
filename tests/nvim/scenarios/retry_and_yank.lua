-- gr answers the last prompt again with a stronger model; gy yanks the nearest code block.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    require('switchboard.models').select(vim.fn.getcwd(), 'claude-haiku-4.5')
    T.wait_notified('next messages use Claude Haiku 4.5')
    local chat = T.send('Show me some code')
    T.wait_idle(chat)
    T.keys('gr')
    T.wait(function()
      return chat.busy == nil and chat.last_result and chat.last_result.routedModel == 'claude-sonnet-4.5'
    end, 'the retry on a stronger model')
    local text = T.text(chat.buf)
    T.contains(text, '## Retry · Claude Sonnet 4.5\nSimulated reply from claude-sonnet-4-5-20250929', 'retry heading')
    T.contains(text, '## Claude Haiku 4.5\n', 'the first answer is kept')
    vim.fn.setreg('"', '')
    vim.api.nvim_win_set_cursor(chat:window(), { 3, 0 })
    T.keys('gy')
    T.eq(vim.fn.getreg('"'), 'def simulated_answer(turn: int) -> str:\n'
      .. '    """Deterministic example produced by the fake Anthropic API."""\n'
      .. '    return f"turn {turn}"\n', 'the yanked code block')
    T.wait_notified('yanked 3 lines of code')
  end,
}
