-- A chat sent while the server starts (queued until it is initialized), with a stored session: it goes to
-- the gateway, because the resume is sent before it (with no API key of its own, local mode would refuse it).
return {
  skip_setup = true,
  timeout = 90,
  run = function(T)
    local opts = vim.json.decode(vim.env.SWITCHBOARD_TEST_OPTS)
    local given = opts.refresh_token
    opts.refresh_token = nil
    opts.secret_store = {
      get = function()
        return given
      end,
      set = function() end,
    }
    require('switchboard').setup(opts)
    vim.cmd('Switchboard chat')
    local chat = T.send('hello through the gateway')
    T.ok(require('switchboard.server').client(vim.fn.getcwd()) == nil, 'the chat was sent before the server was ready')
    T.wait_idle(chat, 45000)
    T.ok(chat.last_result and chat.last_result.credits > 0, 'the answer was charged by the gateway: ' .. T.text(chat.buf))
    T.eq(require('switchboard.status').usage.accountInfo.mode, 'hosted', 'hosted mode')
  end,
}
