-- On Neovim older than 0.10, setup() and the plugin say so clearly instead of failing.
return {
  skip_setup = true,
  run = function(T)
    local real = vim.version
    vim.version = function()
      return { major = 0, minor = 9, patch = 5 }
    end
    local ok = require('switchboard').setup({})
    vim.version = real
    T.eq(ok, false, 'setup() refuses')
    local messages = vim.api.nvim_exec2('messages', { output = true }).output
    T.contains(messages, 'switchboard.nvim needs Neovim 0.10 or newer; this is Neovim 0.9.5.', 'the message')
    vim.cmd('messages clear')
    vim.v.errmsg = ''
    T.eq(require('switchboard').setup({}), true, 'setup() on this Neovim')
  end,
}
