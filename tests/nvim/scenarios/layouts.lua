-- chat.layout: 'float' (this run's setup) and 'horizontal'; a bad layout is reported and falls back.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    local chat = T.wait(T.chat, 'the chat')
    local win = chat:window()
    T.eq(vim.api.nvim_win_get_config(win).relative, 'editor', 'a float')
    T.eq(vim.api.nvim_win_get_width(win), 60, 'width in columns')
    chat:hide()
    T.ok(not chat:window(), 'q/hide closes the window')
    require('switchboard').setup({ chat = { layout = 'horizontal' } })
    vim.cmd('Switchboard chat')
    win = chat:window()
    T.eq(vim.api.nvim_win_get_config(win).relative, '', 'a split')
    T.eq(vim.api.nvim_win_get_width(win), vim.o.columns, 'horizontal: full width')
    require('switchboard').setup({ chat = { layout = 'sideways' } })
    T.wait_notified("chat.layout must be 'vertical', 'horizontal' or 'float'")
    T.eq(require('switchboard.config').options.chat.layout, 'vertical', 'falls back to vertical')
  end,
}
