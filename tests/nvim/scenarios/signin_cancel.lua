-- :Switchboard signin, then q in the code's float: the request is cancelled ($/cancelRequest), the float
-- closes, nothing is stored, and the editor stays in local mode. A second signin gets a fresh code.
local stored = {}

return {
  skip_setup = true,
  run = function(T)
    local opts = vim.json.decode(vim.env.SWITCHBOARD_TEST_OPTS)
    opts.open_browser = false
    opts.secret_store = {
      get = function() end,
      set = function(_, token)
        table.insert(stored, token or vim.NIL)
      end,
    }
    require('switchboard').setup(opts)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    vim.cmd('Switchboard signin')
    T.wait(function()
      return vim.bo.filetype == 'switchboard_signin'
    end, 'the sign-in float')
    local first = T.text(0):match('code:%s+(%S+)')
    T.keys('q')
    T.wait_notified('Switchboard: sign-in cancelled.')
    T.ok(vim.bo.filetype ~= 'switchboard_signin', 'the float is closed')
    -- the server is still there and answers; still local
    local report
    require('switchboard.server').request(vim.fn.getcwd(), 'switchboard/usage', vim.empty_dict(), function(err, r)
      report = err and { error = err } or r
    end)
    T.wait(function()
      return report
    end, 'a usage report after cancelling')
    T.eq(report.accountInfo and report.accountInfo.mode, 'local', 'still local')
    T.eq(#stored, 0, 'nothing stored')

    vim.cmd('Switchboard signin')
    T.wait(function()
      return vim.bo.filetype == 'switchboard_signin'
    end, 'a second sign-in float')
    local second = T.text(0):match('code:%s+(%S+)')
    T.ok(second and second ~= first, 'a fresh code')
    T.keys('q')
    T.wait_notified('Switchboard: sign-in cancelled.')
  end,
}
