-- :checkhealth switchboard: the server found, its version, the key and plan; no errors.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    vim.cmd('checkhealth switchboard')
    local text = T.wait(function()
      local t = T.text(0)
      return t:find('Plan: Free', 1, true) and t
    end, 'the health report')
    T.lacks(text, 'ERROR', 'health errors')
    T.contains(text, "(from the plugin checkout's .venv)", 'where the server was found')
    T.contains(text, 'Version: switchboard 0.', 'the server version')
    T.contains(text, 'Anthropic API key: set (ANTHROPIC_API_KEY)', 'the key')
    T.lacks(text, 'sk-ant-', 'the key itself is never shown')
    T.contains(text, 'Running for ' .. vim.fn.getcwd(), 'the running server')
  end,
}
